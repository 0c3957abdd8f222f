// `modelship batch` on a laptop: a local bundle over a local file (or directory, or glob) of Parquet, CSV or JSON
// Lines, with no cluster. The same pieces as a BatchPrediction's pods, in one process: the runtime in batch mode
// on a Unix socket of a temporary directory (the same fetch, unpack, engine and checks as serving), the planner,
// and the driver of each shard in turn. MLSQL's `predict data as PythonAlg.` for a table on one machine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { planBatch } from '../runtime/batch/plan.ts';
import { runShard } from '../runtime/batch/driver.ts';
import { SocketScorer } from '../runtime/batch/socket-scorer.ts';
import { loadConfig } from '../runtime/config.ts';
import type { BatchDataOptions } from './batch.ts';
import { type BatchFormat, type BatchJobSpec, ENV } from '../runtime/contract.ts';
import { createLogger } from '../runtime/observability/logging.ts';
import { start } from '../runtime/server.ts';

export interface LocalBatchOptions extends BatchDataOptions {
  workers?: number | undefined;
  /** Rows done so far, of the total (the plan's), after each shard. */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface LocalBatchResult {
  rows: number;
  errorRows: number;
  shards: number;
  skipped: number;
  seconds: number;
  output: string;
}

/** The batch spec of a local run (pure): local paths, the sizes a BatchPrediction defaults to. */
export function localBatchSpec(bundle: string, o: LocalBatchOptions): BatchJobSpec {
  return {
    // The bundle's path names the model (not its content: an output is reused only with the same path).
    model: `file://${resolve(bundle)}`,
    input: { uri: resolve(o.input), ...(o.format ? { format: o.format } : {}) },
    output: { uri: resolve(o.output), ...(o.outputFormat ? { format: o.outputFormat } : {}) },
    ...(o.columns ? { columns: o.columns } : {}),
    ...(o.keyColumns?.length ? { keyColumns: o.keyColumns } : {}),
    batchSize: o.batchSize ?? 1024,
    maxRowErrors: o.maxRowErrors ?? 100,
    rowsPerShard: o.rowsPerShard ?? 1_000_000,
    // One process runs the shards in turn: as few as the rows allow.
    parallelism: 1,
  };
}

export async function batchLocal(bundle: string, o: LocalBatchOptions): Promise<LocalBatchResult> {
  const t0 = performance.now();
  const spec = localBatchSpec(bundle, o);
  const dir = await mkdtemp(join(tmpdir(), 'modelship-batch-'));
  const log = createLogger(process.env[ENV.logLevel] ?? 'warn', { component: 'modelship-batch' });
  const config = loadConfig(
    { ...process.env, [ENV.batchSocket]: join(dir, 'model.sock'), [ENV.healthPort]: '0' },
    { bundleUri: resolve(bundle), host: '127.0.0.1', workers: o.workers ?? 0, workDir: join(dir, 'work') },
  );
  const runtime = await start(config, log);
  let scorer: SocketScorer | undefined;
  try {
    const plan = await planBatch(spec, { log });
    await runtime.loaded;
    scorer = await SocketScorer.connect(join(dir, 'model.sock'));
    let rows = 0;
    let errorRows = 0;
    let skipped = 0;
    for (let index = 0; index < plan.shards; index++) {
      const report = await runShard(spec, index, scorer, { log });
      rows += report.rows;
      errorRows += report.errorRows;
      if (report.skipped) skipped++;
      o.onProgress?.(rows + errorRows, plan.rows);
    }
    return { rows, errorRows, shards: plan.shards, skipped, seconds: (performance.now() - t0) / 1000, output: spec.output.uri };
  } finally {
    await scorer?.close();
    await runtime.shutdown();
    await rm(dir, { recursive: true, force: true });
  }
}
