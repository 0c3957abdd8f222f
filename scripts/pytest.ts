// The Python package's checks, as part of `npm test`, with the local environment's Python (the python component: the
// base stack and the test tools of env/python-test.lock): ruff, mypy --strict (the package, then the compatibility
// modules, which are top-level packages at run time: ray, hops, ml_deploy), and the tests (sdk/python/tests).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { binaries, ensureBuilt } from '../env/build.ts';

await ensureBuilt({ only: ['python'] });
const { python, uv } = binaries();
const sdk = join(import.meta.dirname, '..', 'sdk', 'python');
const compat = join(sdk, 'modelship', '_compat');
const config = join(sdk, 'pyproject.toml');

const steps: { args: string[]; cwd: string; env?: NodeJS.ProcessEnv }[] = [
  { args: ['-m', 'ruff', 'check', '--no-cache', '.'], cwd: sdk },
  { args: ['-m', 'mypy', '--config-file', config, '--no-incremental'], cwd: sdk },
  {
    args: ['-m', 'mypy', '--config-file', config, '--no-incremental', 'ray', 'hops', 'ml_deploy'],
    cwd: compat,
    env: { ...process.env, MYPYPATH: sdk },
  },
  // The requirements cache's tests install with the real uv.
  { args: ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(sdk, 'tests')], cwd: sdk, env: { ...process.env, MODELSHIP_UV: uv } },
];
for (const step of steps) {
  const r = spawnSync(python, step.args, { cwd: step.cwd, stdio: 'inherit', env: step.env ?? process.env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
