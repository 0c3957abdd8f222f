// The Python package's tests (sdk/python/tests), with pytest in the local environment's Python (the
// python component: the base stack and pytest), as part of `npm test`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { binaries, ensureBuilt } from '../env/build.ts';

await ensureBuilt({ only: ['python'] });
const root = join(import.meta.dirname, '..');
const r = spawnSync(binaries().python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(root, 'sdk', 'python', 'tests')], {
  cwd: join(root, 'sdk', 'python'),
  stdio: 'inherit',
  // The requirements cache's tests install with the real uv.
  env: { ...process.env, MODELSHIP_UV: binaries().uv },
});
process.exit(r.status ?? 1);
