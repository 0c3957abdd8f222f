// The Lucidworks Fusion seed's Keras sentiment plugin (examples/fusion-sentiment: its predict.py verbatim, a
// Keras 2 .h5 and a pickled Tokenizer) served by `modelship serve` on the host, with the local environment's
// Python and uv (the python component: the base stack), its requirements.txt (TensorFlow 2.21, Keras 3,
// tf-keras) installed by uv from the package index; `modelship predict` labels a positive and a negative
// sentence it was not trained on. The environment (about 2 GB) is kept in the cache between runs, keyed by the
// requirements like any other, so only the first run downloads TensorFlow.
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { binaries } from '../../env/build.ts';
import { cacheRoot } from '../../env/cache.ts';
import { CLI, serveProcess } from '../cli/serve-process.ts';

const BUNDLE = join(import.meta.dirname, '../../examples/fusion-sentiment');
/** The first start installs TensorFlow (about 600 MB from the index); every start imports it in each worker. */
const READY_TIMEOUT = 600_000;
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) s.kill('SIGTERM');
});

describe('the Fusion Keras sentiment example', () => {
  it(
    'installs its requirements, loads the .h5 and the tokenizer, and labels a positive and a negative sentence',
    async () => {
      const tmp = await mkdtemp(join(tmpdir(), 'fusion-sentiment-'));
      const { python, uv } = binaries();
      const { child, serving } = serveProcess(
        [BUNDLE, '--port', '0', '--workers', '1'],
        {
          ...process.env,
          MODELSHIP_WORK_DIR: join(tmp, 'work'),
          MODELSHIP_PYTHON: python,
          MODELSHIP_UV: uv,
          MODELSHIP_PYTHON_ENV_DIR: join(cacheRoot(), 'test-python-envs'),
          MODELSHIP_PYTHON_INSTALL_TIMEOUT_MS: String(READY_TIMEOUT),
          MODELSHIP_LOG_LEVEL: 'warn',
          TF_CPP_MIN_LOG_LEVEL: '2',
        },
        READY_TIMEOUT,
      );
      servers.push(child);
      const { name, url } = await serving;
      expect(name).toBe('sentiment');
      const run = (input: string) =>
        promisify(execFile)(process.execPath, [CLI, 'predict', url, '-m', 'sentiment', '-i', input], { timeout: 60_000 });
      const positive = JSON.parse((await run(join(BUNDLE, 'test-input.json'))).stdout);
      expect(positive.sentiment).toBe('positive');
      expect(positive.score).toBeGreaterThan(0.5);
      const negative = JSON.parse((await run('{"input": "The soup was cold, the bread was stale and the waiter was rude."}')).stdout);
      expect(negative.sentiment).toBe('negative');
      expect(negative.score).toBeLessThan(0.5);
    },
    READY_TIMEOUT + 120_000,
  );
});
