// The runtime's entry point: `node runtime/main.ts`. Turns on Node's compile cache before anything heavy is
// imported (compiled code and stripped TypeScript are reused across starts: a restarted pod, or an image
// built with a warm cache), then runs the server, or with `prepare` the pod's init container.
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Best effort: on a read-only filesystem the cache is read if present and otherwise skipped.
enableCompileCache?.(process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'modelship-compile-cache'));
// `prepare`, `install`: the pod's init steps (runtime/prepare.ts); `recorder`, `auth`: its sidecars; `batch-plan`,
// `batch-run`: a BatchPrediction's planner and shard driver (`batch-model`, its model, is the server on a socket);
// else the server.
const role = process.argv[2];
if (role === 'batch-model') {
  const { BATCH, ENV } = await import('./contract.ts');
  process.env[ENV.batchSocket] ||= BATCH.socket;
}
const main =
  role === 'batch-plan'
    ? (await import('./batch/driver.ts')).planMain
    : role === 'batch-run'
      ? (await import('./batch/driver.ts')).runMain
      : role === 'prepare'
        ? (await import('./prepare.ts')).main
        : role === 'install'
          ? (await import('./prepare.ts')).install
          : role === 'recorder'
            ? (await import('./inference-log/recorder-sidecar.ts')).main
            : role === 'auth'
              ? (await import('./auth/sidecar.ts')).main
              : (await import('./server.ts')).main;
await main();
