// `modelship test` on Python bundles, with the local environment's Python (MODELSHIP_PYTHON), and the
// error that names what to install when there is no Python.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../cli/modelship.ts';
import { binaries } from '../../env/build.ts';
import { captureConsole } from './console.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const { out, err } = captureConsole();
beforeEach(() => {
  vi.stubEnv('MODELSHIP_PYTHON', binaries().python);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('modelship test with Python bundles', () => {
  it('runs the no-code sklearn bundle and the Hopsworks one on their test inputs', async () => {
    expect(await run(['test', join(EXAMPLES, 'iris-sklearn'), '-i', join(EXAMPLES, 'iris-sklearn', 'test-input.json')])).toBe(0);
    expect(JSON.parse(out.at(-1) as string)).toMatchObject({ predict: 0 });
    expect(await run(['test', join(EXAMPLES, 'hopsworks-iris'), '-i', '[{"input":[5.1,3.5,1.4,0.2]},{"input":[6.7,3.0,5.2,2.3]}]'])).toBe(
      0,
    );
    expect(JSON.parse(out.at(-1) as string)).toEqual([{ predictions: 0 }, { predictions: 2 }]);
  });

  it('checks the declared inputs, and reports a plugin ValueError as the caller’s mistake', async () => {
    expect(await run(['test', join(EXAMPLES, 'fusion-echo'), '-i', '{"x": 1}'])).toBe(1);
    expect(err.at(-1)).toBe("modelship: MS_ERR_INPUT_INVALID: invalid input: Input must contain the key 'input'");
  });

  it('names what to install when there is no Python', async () => {
    vi.stubEnv('MODELSHIP_PYTHON', '/nonexistent/python3');
    expect(await run(['test', join(EXAMPLES, 'fusion-echo'), '-i', '{"input": 1}'])).toBe(1);
    expect(err.at(-1)).toBe(
      'modelship: MS_ERR_PYTHON_NOT_FOUND: no usable Python interpreter at /nonexistent/python3: not found; install Python >= 3.10 with the packages the bundle imports, set MODELSHIP_PYTHON to it, or serve with the modelship/runtime-python image',
    );
  });
});
