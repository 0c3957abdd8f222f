// The iris classifier: softmax regression with weights trained by ../train/train.ts.
// Input: {features: [sepal_length, sepal_width, petal_length, petal_width]} (cm), or the four named fields.
// Output: {label, probabilities} with probabilities in the order of the classes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

let model;

export async function init(bundlePath, ctx) {
  model = JSON.parse(await readFile(join(bundlePath, 'weights.json'), 'utf8'));
  ctx.log.info({ classes: model.classes, trainingAccuracy: model.trainingAccuracy }, 'iris model loaded');
}

// A plain array from JSON; a Float64Array (or Float32Array) when the client sent the tensor as binary.
function featuresOf(input) {
  const f = input.features;
  const x = Array.isArray(f) ? f : ArrayBuffer.isView(f) ? Array.from(f) : model.features.map((name) => input[name]);
  if (x.length !== 4 || x.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new Error(`expected 4 numbers (features: ${model.features.join(', ')}), got ${JSON.stringify(input)}`);
  }
  return x;
}

export async function predict(input) {
  const x = featuresOf(input);
  const z = x.map((v, j) => (v - model.mean[j]) / model.std[j]);
  const logits = model.weights.map((w, c) => model.bias[c] + w.reduce((s, wj, j) => s + wj * z[j], 0));
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  const probabilities = e.map((v) => v / sum);
  return { label: model.classes[probabilities.indexOf(Math.max(...probabilities))], probabilities };
}

export function metadata() {
  return { classes: model.classes };
}
