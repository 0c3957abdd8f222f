// `modelship init`: a new JS bundle with a predict plugin, a manifest and a test input.
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

const PREDICT = `// The modelship plugin contract: init() once before serving, predict() per input.
// See the README ("Writing a bundle") for predictBatch, feedback, routes and metadata.

let threshold;

/** Called once with the unpacked bundle's path before the model reports ready. */
export async function init(bundlePath, ctx) {
  threshold = ctx.parameters.threshold ?? 0.5;
  ctx.log.info({ bundlePath, threshold }, 'model initialized');
}

/** One input object (keys are input names) → one output object (keys are output names). */
export async function predict(input, ctx) {
  const score = input.values.reduce((a, b) => a + b, 0) / input.values.length;
  return { score, positive: score > threshold };
}
`;

export async function scaffold(dir: string): Promise<string[]> {
  const target = resolve(dir);
  if (existsSync(target) && (await readdir(target)).length > 0) throw new Error(`${target} is not empty`);
  await mkdir(target, { recursive: true });
  const name =
    basename(target)
      .toLowerCase()
      .replace(/[^a-z0-9-_.]/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'model';
  const files: Record<string, string> = {
    'predict.mjs': PREDICT,
    'modelship.yaml': `name: ${name}\nversion: "1"\nformat: js\nentrypoint: predict.mjs\nparameters:\n  threshold: 0.5\ninputs:\n  - {name: values, datatype: FP64, shape: [-1, -1]}\noutputs:\n  - {name: score, datatype: FP64, shape: [-1]}\n  - {name: positive, datatype: BOOL, shape: [-1]}\n`,
    'test-input.json': '{ "values": [0.2, 0.9, 0.7] }\n',
  };
  for (const [f, content] of Object.entries(files)) await writeFile(join(target, f), content);
  return Object.keys(files).map((f) => join(target, f));
}
