// `npm run bench:batch`: batch prediction against the same rows sent as requests, side by side in the same run,
// on this machine. For each engine (the no-code scikit-learn iris bundle on the Python engine, and its ONNX
// conversion), with the same number of worker processes / threads on both sides:
//   online  the model served by our runtime (its best setup: with and without adaptive batching, the faster
//           kept), one row per request (OIP v2 JSON), autocannon with 64 connections for BENCH_SECONDS; rows/s
//           = requests/s
//   batch   `modelship batch <bundle> --input <dir> --output <dir>` over BENCH_BATCH_ROWS rows of Parquet (one
//           file of 60% of the rows in row groups of 100,000, the rest in four files), in a child process; rows/s
//           = rows ÷ the whole command's wall time (start, model load, plan, read, score, write)
//   ratio   batch rows/s ÷ online rows/s (the target: ≥ 10 for the Python and ONNX engines)
// Every output row is counted back from the Parquet parts. Traffic goes to 127.0.0.1 only; each server runs in
// its own process group, killed at the end. Prints one JSON document.
// BENCH_SECONDS (default 10), BENCH_BATCH_ROWS (default 1000000), BENCH_ROUNDS (default 1, medians).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { binaries } from '../env/build.ts';
import { IRIS_COLUMNS, writeIrisParquet } from '../test/fixtures/iris-rows.ts';
import { median, ratio } from './lib.ts';
import { BENCH_BATCH, benchSettings, killAll, launch, log, measure, root, SETOSA, startOurs } from './servers.ts';

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 1_000_000);
const WORKERS = Math.min(2, availableParallelism());
const ENGINES = [
  { name: 'python', bundle: 'examples/iris-sklearn', model: 'iris-sklearn', input: 'input' },
  { name: 'onnx', bundle: 'examples/iris-onnx', model: 'iris-onnx', input: 'input' },
] as const;

async function dataset(dir: string): Promise<void> {
  const big = Math.round(ROWS * 0.6);
  await writeIrisParquet(join(dir, 'part-a.parquet'), 0, big, 100_000);
  const rest = ROWS - big;
  for (let i = 0; i < 4; i++) {
    const first = big + Math.floor((rest * i) / 4);
    await writeIrisParquet(join(dir, `part-${'bcde'[i]}.parquet`), first, big + Math.floor((rest * (i + 1)) / 4) - first, 100_000);
  }
}

/** Rows in the Parquet parts of an output directory. */
async function outputRows(dir: string): Promise<number> {
  let rows = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.parquet')) continue;
    const b = await readFile(join(dir, name));
    rows += Number(parquetMetadata(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer).num_rows);
  }
  return rows;
}

async function batchRun(
  bundle: string,
  input: string,
  work: string,
): Promise<{ rowsPerSecond: number; seconds: number; cliSeconds: number }> {
  const output = await mkdtemp(join(work, 'out-'));
  const t0 = performance.now();
  const p = launch(
    'batch',
    process.execPath,
    [
      join(root, 'cli/modelship.ts'),
      'batch',
      join(root, bundle),
      '--input',
      input,
      '--output',
      output,
      '--columns',
      `input=${IRIS_COLUMNS.join(',')}`,
      '--key',
      'id',
      '--workers',
      String(WORKERS),
      '--json',
    ],
    { env: { ...process.env, MODELSHIP_PYTHON: binaries().python, MODELSHIP_LOG_LEVEL: 'warn' } },
  );
  const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  const seconds = (performance.now() - t0) / 1000;
  await p.stop();
  if (code !== 0) throw new Error(`modelship batch exited with ${code}:\n${p.output()}`);
  const result = JSON.parse(p.output().trim().split('\n').at(-1) as string) as { rows: number; seconds: number };
  const counted = await outputRows(output);
  if (result.rows !== ROWS || counted !== ROWS) throw new Error(`batch scored ${result.rows} rows, wrote ${counted}, of ${ROWS}`);
  await rm(output, { recursive: true, force: true });
  return { rowsPerSecond: Math.round(ROWS / seconds), seconds: Number(seconds.toFixed(2)), cliSeconds: Number(result.seconds.toFixed(2)) };
}

async function onlineRun(engine: (typeof ENGINES)[number], batching: boolean, work: string, s: ReturnType<typeof benchSettings>) {
  const body = JSON.stringify({ inputs: [{ name: engine.input, shape: [1, 4], datatype: 'FP64', data: SETOSA }] });
  const server = await startOurs({
    bundle: join(root, engine.bundle),
    model: engine.model,
    workers: WORKERS,
    batching: batching ? BENCH_BATCH : undefined,
    body,
    work,
    label: `${engine.name}${batching ? '+batching' : ''}`,
  });
  try {
    return await measure(server.proc, server.target, server.readyMs, s.settings);
  } finally {
    await server.proc.stop();
  }
}

async function main() {
  const s = benchSettings(1);
  const work = await mkdtemp(join(tmpdir(), 'bench-batch-'));
  try {
    const input = join(work, 'input');
    await import('node:fs/promises').then((fs) => fs.mkdir(input));
    log(`writing ${ROWS} iris rows as Parquet`);
    await dataset(input);
    const results: Record<string, unknown> = {};
    for (const engine of ENGINES) {
      const online: { batching: boolean; rps: number; p99Ms: number }[] = [];
      const batch: { rowsPerSecond: number; seconds: number; cliSeconds: number }[] = [];
      for (let round = 0; round < s.rounds; round++) {
        for (const batching of [false, true]) {
          log(`${engine.name}: online${batching ? ' with adaptive batching' : ''}, ${s.seconds} s`);
          const m = await onlineRun(engine, batching, work, s);
          if (m.non2xx || m.errors) throw new Error(`${engine.name} online: ${m.non2xx} non-2xx, ${m.errors} errors`);
          online.push({ batching, rps: m.rps, p99Ms: m.p99Ms });
        }
        log(`${engine.name}: batch over ${ROWS} rows`);
        batch.push(await batchRun(engine.bundle, input, work));
      }
      const best = (b: boolean) => median(online.filter((o) => o.batching === b).map((o) => o.rps));
      const onlineBest = Math.max(best(false), best(true));
      const batchRate = median(batch.map((b) => b.rowsPerSecond));
      results[engine.name] = {
        workers: WORKERS,
        onlineRowsPerSecond: { plain: best(false), adaptiveBatching: best(true) },
        batchRowsPerSecond: batchRate,
        batchRuns: batch,
        batchVsBestOnline: ratio(batchRate, onlineBest),
      };
    }
    console.log(
      JSON.stringify({ rows: ROWS, cpus: availableParallelism(), connections: s.connections, seconds: s.seconds, results }, null, 2),
    );
  } finally {
    killAll();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
