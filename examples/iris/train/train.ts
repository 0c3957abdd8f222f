// Trains the iris example's model: multinomial logistic (softmax) regression on standardized features,
// full-batch gradient descent from zero weights with L2 regularization. Deterministic: the same data
// always gives the same weights. Writes ../bundle/weights.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [header, ...lines] = readFileSync(join(here, 'iris.csv'), 'utf8').trim().split('\n');
const classes = (header ?? '').split(',').slice(2);
const rows = lines.map((l) => l.split(',').map(Number));
const X = rows.map((r) => r.slice(0, 4));
const y = rows.map((r) => r[4] as number);
const features = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
const d = features.length;
const k = classes.length;
const n = X.length;

const mean = features.map((_, j) => X.reduce((s, x) => s + (x[j] as number), 0) / n);
const std = features.map((_, j) => Math.sqrt(X.reduce((s, x) => s + ((x[j] as number) - (mean[j] as number)) ** 2, 0) / n));
const Z = X.map((x) => x.map((v, j) => (v - (mean[j] as number)) / (std[j] as number)));

const W = Array.from({ length: k }, () => new Array<number>(d).fill(0));
const b = new Array<number>(k).fill(0);
const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, c) => a + c, 0);
  return e.map((v) => v / s);
};
const probs = (z: number[]) => softmax(W.map((w, c) => (b[c] as number) + w.reduce((s, wj, j) => s + wj * (z[j] as number), 0)));

const lr = 0.5;
const l2 = 1e-3;
for (let epoch = 0; epoch < 3000; epoch++) {
  const gW = Array.from({ length: k }, () => new Array<number>(d).fill(0));
  const gb = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const p = probs(Z[i] as number[]);
    for (let c = 0; c < k; c++) {
      const err = (p[c] as number) - (y[i] === c ? 1 : 0);
      gb[c] = (gb[c] as number) + err / n;
      for (let j = 0; j < d; j++)
        (gW[c] as number[])[j] = ((gW[c] as number[])[j] as number) + (err * ((Z[i] as number[])[j] as number)) / n;
    }
  }
  for (let c = 0; c < k; c++) {
    b[c] = (b[c] as number) - lr * (gb[c] as number);
    for (let j = 0; j < d; j++) {
      const w = W[c] as number[];
      w[j] = (w[j] as number) - lr * (((gW[c] as number[])[j] as number) + l2 * (w[j] as number));
    }
  }
}
const correct = Z.filter((z, i) => {
  const p = probs(z);
  return p.indexOf(Math.max(...p)) === y[i];
}).length;
const round = (v: number) => Number(v.toPrecision(10));
const model = {
  model: 'softmax-regression',
  features,
  classes,
  mean: mean.map(round),
  std: std.map(round),
  weights: W.map((w) => w.map(round)),
  bias: b.map(round),
  trainingAccuracy: correct / n,
};
writeFileSync(join(here, '..', 'bundle', 'weights.json'), `${JSON.stringify(model, null, 2)}\n`);
console.log(`trained on ${n} rows: training accuracy ${(100 * model.trainingAccuracy).toFixed(1)}%`);
