// A shard of a batch prediction: read its rows (per the plan), map columns onto the model's inputs, send
// fixed-size batches to the model (a Scorer) with its capacity in flight, and write the part, the refused rows and
// then the shard's marker, each atomically. The marker is last: a shard whose marker exists is done, and a re-run
// skips it; a shard killed before it is redone from the start and overwrites the same names.
//
// Also the two entry points of the runtime image's batch roles: `main.ts batch-plan` (planMain) and
// `main.ts batch-run` (runMain). Each writes its report as one JSON line to the termination log; a failure the
// input causes exits BATCH.terminalExitCode (the operator does not retry that index), any other exits 1.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { BATCH, BATCH_FORMATS, type BatchJobSpec, type BatchPlanReport, type BatchShardReport, ENV, PATHS } from '../contract.ts';
import { describe, type ErrorCode, isModelshipError, msError } from '../errors.ts';
import { createLogger } from '../observability/logging.ts';
import { describeSchemaErrors } from '../schema-errors.ts';
import {
  type Block,
  type Column,
  EXTENSIONS,
  jsonValue,
  readCsv,
  readJsonl,
  readParquet,
  type TableColumn,
  writeTable,
} from './formats.ts';
import { type BatchPlan, fingerprint, type PlannedFile, planBatch, planShape, readPlan, type ShardSlice, shapeChanges } from './plan.ts';
import { type Store, type StoreOptions, storeFor } from './store.ts';

/** What the driver scores rows with: the model sidecar over its socket (socket-scorer.ts), or a test's function. */
export interface Scorer {
  /** The model's input names (from its metadata), for the default column mapping. */
  inputs(): Promise<string[]>;
  /** One result per row, in order: the model's outputs as JSON values, or why it refused that row. */
  score(rows: Record<string, unknown>[]): Promise<ScoreResult[]>;
  /** Batches worth keeping in flight (the model's capacity). */
  readonly concurrency: number;
  close(): Promise<void>;
}
export type ScoreResult = { outputs: Record<string, unknown> } | { error: string; code?: string };

// ---- the spec ---------------------------------------------------------------------------------------------------

const LocationSchema = Type.Object({
  uri: Type.String({ minLength: 1 }),
  format: Type.Optional(Type.Enum([...BATCH_FORMATS])),
  storage: Type.Optional(
    Type.Object({
      endpoint: Type.String({ minLength: 1 }),
      region: Type.Optional(Type.String({ minLength: 1 })),
      credentialsDir: Type.Optional(Type.String({ minLength: 1 })),
    }),
  ),
});

/** The batch spec as the pods get it (ENV.batchSpec). Unknown fields are ignored (a newer operator may add some). */
export const BatchJobSpecSchema = Type.Object({
  model: Type.Optional(Type.String({ minLength: 1 })),
  input: LocationSchema,
  output: LocationSchema,
  columns: Type.Optional(
    Type.Record(
      Type.String({ minLength: 1 }),
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    ),
  ),
  keyColumns: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  // the model sidecar takes at most 65536 rows a call
  batchSize: Type.Integer({ minimum: 1, maximum: 65536 }),
  maxRowErrors: Type.Integer({ minimum: 0 }),
  rowsPerShard: Type.Integer({ minimum: 1 }),
  parallelism: Type.Optional(Type.Integer({ minimum: 1 })),
});
// The schema and the contract's type stay one: each must be assignable to the other.
const sameAsContract = (s: Static<typeof BatchJobSpecSchema>): BatchJobSpec => s;
const contractAsSchema = (s: BatchJobSpec): Static<typeof BatchJobSpecSchema> => s;
void sameAsContract;
void contractAsSchema;

const specValidator = Compile(BatchJobSpecSchema);

/** The spec from its JSON text (pure); malformed → MS_ERR_BATCH_SPEC_INVALID. */
export function parseSpec(text: string | undefined): BatchJobSpec {
  if (!text) throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `${ENV.batchSpec} is not set` });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `${ENV.batchSpec} is not JSON: ${describe(err)}` });
  }
  if (!specValidator.Check(doc)) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: describeSchemaErrors(specValidator.Errors(doc)) });
  }
  return doc as BatchJobSpec;
}

export function parseIndex(text: string | undefined): number {
  if (!text || !/^\d{1,6}$/.test(text)) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', {
      detail: `${ENV.jobCompletionIndex} must be a shard number, got ${JSON.stringify(text ?? null)}`,
    });
  }
  return Number(text);
}

// ---- names under the output ---------------------------------------------------------------------------------------

const pad = (index: number) => String(index).padStart(5, '0');
/** A shard's k-th part: `part-00003.parquet`, then `part-00003-1.parquet`, … (a part every ROWS_PER_PART input rows). */
export const partName = (index: number, format: BatchJobSpec['output']['format'] & string, k = 0) =>
  `part-${pad(index)}${k > 0 ? `-${k}` : ''}.${EXTENSIONS[format]}`;
export const errorsPartName = (index: number) => `errors/part-${pad(index)}.jsonl`;
export const markerName = (index: number) => `${BATCH.metaDir}/shard-${pad(index)}.json`;

// ---- one shard ----------------------------------------------------------------------------------------------------

/**
 * Input rows per output part: a shard's output is written as it goes, a part at a time, so the driver holds one
 * part's rows (not the shard's) and a shard may be large. Boundaries fall at fixed input-row counts (whatever the
 * batch size or the rows refused), so a retried shard writes the same part names and never leaves a stale one.
 */
export const ROWS_PER_PART = 100_000;

export interface ShardOptions {
  /** Input rows per output part (ROWS_PER_PART). */
  rowsPerPart?: number;
  log?: Logger;
  store?: StoreOptions;
  /** Rows read from a file at once (a block). */
  blockRows?: number;
}

/** Model input → the column it takes, or the columns of its vector. */
type Mapping = [input: string, columns: string | string[]][];

async function columnMapping(spec: BatchJobSpec, scorer: Scorer): Promise<Mapping> {
  if (spec.columns && Object.keys(spec.columns).length > 0) return Object.entries(spec.columns);
  const inputs = await scorer.inputs();
  if (inputs.length === 0) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: 'the model names no inputs in its metadata: set columns (model input → column)' });
  }
  return inputs.map((name) => [name, name]);
}

/** A batch on its way to the model: its rows and, per key column, each row's key. */
interface Batch {
  rows: Record<string, unknown>[];
  keys: unknown[][];
}

/** A value as the model gets it (JSON): numbers and strings as they are, the rest through jsonValue. */
function cell(v: unknown): unknown {
  return typeof v === 'number' || typeof v === 'string' ? v : jsonValue(v);
}

/** The scored rows of a shard, column-major: the key columns, then each output as it first appears. */
class OutputTable {
  readonly keyNames: string[];
  readonly keys: unknown[][];
  readonly outputs = new Map<string, unknown[]>();
  rows = 0;

  constructor(keyNames: string[]) {
    this.keyNames = keyNames;
    this.keys = keyNames.map(() => []);
  }

  add(batch: Batch, i: number, outputs: Record<string, unknown>): void {
    for (let k = 0; k < this.keys.length; k++) (this.keys[k] as unknown[]).push((batch.keys[k] as unknown[])[i]);
    for (const name in outputs) {
      let col = this.outputs.get(name);
      if (!col) {
        if (this.keyNames.includes(name)) {
          throw msError('MS_ERR_BATCH_SPEC_INVALID', {
            detail: `the model's output "${name}" has the name of a key column: choose other keyColumns`,
          });
        }
        col = new Array(this.rows).fill(null);
        this.outputs.set(name, col);
      }
      col.push(outputs[name]);
    }
    this.rows++;
    for (const col of this.outputs.values()) if (col.length < this.rows) col.push(null);
  }

  columns(): TableColumn[] {
    return [
      ...this.keyNames.map((name, k) => ({ name, values: this.keys[k] as unknown[] })),
      ...[...this.outputs].map(([name, values]) => ({ name, values })),
    ];
  }
}

/** The blocks of one slice of the shard, after checking the file is the one planned. */
async function* sliceBlocks(
  input: Store,
  file: PlannedFile,
  slice: ShardSlice,
  columns: string[],
  keyColumns: readonly string[],
  blockRows?: number,
): AsyncGenerator<Block> {
  const reader = await input.reader(file.name);
  if (reader.version !== file.version) {
    throw msError('MS_ERR_BATCH_PLAN_CHANGED', { uri: input.display, detail: `input file ${file.name} changed since the plan` });
  }
  const common = { name: input.display + file.name, columns, ...(blockRows ? { blockRows } : {}) };
  if (file.format === 'parquet') {
    yield* readParquet(reader, { ...common, rowStart: slice.rowStart, rowEnd: slice.rowEnd });
  } else if (file.format === 'csv') {
    // Key columns keep their text ("00042" stays "00042"): the output joins back to the input on them.
    const numericColumns = (file.numericColumns ?? []).filter((c) => !keyColumns.includes(c));
    yield* readCsv(await input.stream(file.name), { ...common, numericColumns });
  } else {
    yield* readJsonl(await input.stream(file.name), common);
  }
}

/** Runs shard `index` of the plan under the output; a shard already done is skipped. */
export async function runShard(spec: BatchJobSpec, index: number, scorer: Scorer, opts: ShardOptions = {}): Promise<BatchShardReport> {
  const t0 = performance.now();
  const log = opts.log;
  const output = await storeFor(spec.output, { ...opts.store, directory: true });
  const done = await output.get(markerName(index));
  if (done) {
    const r = JSON.parse(done.toString('utf8')) as BatchShardReport;
    log?.info({ shard: index, rows: r.rows, errorRows: r.errorRows }, 'shard already done: skipped');
    return { shard: index, rows: r.rows, errorRows: r.errorRows, seconds: r.seconds, skipped: true };
  }

  const plan = await readPlan(output);
  if (!plan) {
    throw msError('MS_ERR_BATCH_STORAGE', {
      endpoint: output.display,
      operation: 'read',
      key: 'the plan',
      detail: 'no plan (the plan Job writes it first)',
    });
  }
  checkPlan(spec, plan, output);
  const shard = plan.shards[index];
  if (!shard) throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `shard ${index} is not in the plan (${plan.shards.length} shards)` });

  const input = await storeFor(spec.input, opts.store);
  const mapping = await columnMapping(spec, scorer);
  const keyColumns = spec.keyColumns?.length ? spec.keyColumns : undefined;
  const wanted = [...new Set([...mapping.flatMap(([, c]) => c), ...(keyColumns ?? [])])];
  const files = new Map(plan.files.map((f) => [f.name, f]));
  const keyNames = keyColumns ?? ['_file', '_row'];
  const rowsPerPart = opts.rowsPerPart ?? ROWS_PER_PART;
  let table = new OutputTable(keyNames);
  const refused: { keys: unknown[]; error: string; code: string | null }[] = [];
  log?.info({ shard: index, rows: shard.rows, files: shard.slices.length }, 'shard started');

  async function* batches(): AsyncGenerator<Batch> {
    let batch: Batch = { rows: [], keys: keyNames.map(() => []) };
    let read = 0;
    for (const slice of shard?.slices ?? []) {
      const file = files.get(slice.file);
      if (!file)
        throw msError('MS_ERR_BATCH_PLAN_CHANGED', {
          uri: output.display,
          detail: `the plan names ${slice.file} but does not describe it`,
        });
      for await (const block of sliceBlocks(input, file, slice, wanted, keyColumns ?? [], opts.blockRows)) {
        // One column gives its value (a list of one too, as the operator writes it), several a vector in order.
        const cols = mapping.map(([name, c]) =>
          typeof c === 'string' || c.length === 1
            ? { name, one: block.columns[typeof c === 'string' ? c : (c[0] as string)] as Column }
            : { name, many: c.map((x) => block.columns[x] as Column) },
        );
        const keyCols: Column[] | undefined = keyColumns?.map((k) => block.columns[k] as Column);
        for (let r = 0; r < block.rows; r++) {
          const row: Record<string, unknown> = {};
          for (const c of cols) row[c.name] = c.one ? cell(c.one[r]) : (c.many as Column[]).map((col) => cell(col[r]));
          batch.rows.push(row);
          if (keyCols) for (let k = 0; k < keyCols.length; k++) (batch.keys[k] as unknown[]).push((keyCols[k] as Column)[r]);
          else {
            (batch.keys[0] as unknown[]).push(slice.file);
            (batch.keys[1] as unknown[]).push(block.firstRow + r);
          }
          read++;
          // A batch never spans two parts.
          if (batch.rows.length === spec.batchSize || read % rowsPerPart === 0) {
            yield batch;
            batch = { rows: [], keys: keyNames.map(() => []) };
          }
        }
      }
    }
    if (batch.rows.length > 0) yield batch;
  }

  const writeErrors = async () => {
    if (refused.length === 0) return output.remove(errorsPartName(index));
    const names = [...keyNames, 'error', 'code'];
    const columns = names.map((name, k) => ({
      name,
      values: refused.map((e) => (k < keyNames.length ? e.keys[k] : name === 'error' ? e.error : e.code)),
    }));
    await output.put(errorsPartName(index), writeTable('jsonl', columns, refused.length));
  };

  // The parts written so far (their uploads run on while the next part fills) and the rows in them.
  const parts: string[] = [];
  const uploads: Promise<void>[] = [];
  let scored = 0;
  let partIndex = 0;
  let partInput = 0;
  const flush = () => {
    if (table.rows > 0) {
      const name = partName(index, plan.outputFormat, partIndex);
      const bytes = writeTable(plan.outputFormat, table.columns(), table.rows);
      const upload = output.put(name, bytes);
      upload.catch(() => {}); // awaited below, before the marker
      uploads.push(upload);
      parts.push(name);
    }
    table = new OutputTable(keyNames);
    partIndex++;
    partInput = 0;
  };

  const collect = async (batch: Batch, pending: Promise<ScoreResult[]>) => {
    const results = await pending;
    if (!Array.isArray(results) || results.length !== batch.rows.length) {
      throw msError('MS_ERR_PREDICT_FAILED', {
        detail: `the model answered ${Array.isArray(results) ? results.length : 'no'} results for ${batch.rows.length} rows`,
      });
    }
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as ScoreResult;
      if ('outputs' in r && r.outputs && typeof r.outputs === 'object') {
        table.add(batch, i, r.outputs);
        scored++;
        continue;
      }
      const e = r as { error?: unknown; code?: unknown };
      refused.push({
        keys: batch.keys.map((k) => k[i]),
        error: String(e.error ?? 'refused'),
        code: typeof e.code === 'string' ? e.code : null,
      });
      if (refused.length > spec.maxRowErrors) {
        await writeErrors();
        const first = refused[0] as (typeof refused)[number];
        throw msError('MS_ERR_BATCH_TOO_MANY_ROW_ERRORS', {
          shard: index,
          count: refused.length,
          limit: spec.maxRowErrors,
          detail: first.error,
        });
      }
    }
    partInput += batch.rows.length;
    if (partInput >= rowsPerPart) flush();
  };

  // Up to `concurrency` batches in flight; results are taken in the order the batches were sent.
  const concurrency = Math.max(1, Math.floor(scorer.concurrency) || 1);
  const inflight: [Batch, Promise<ScoreResult[]>][] = [];
  for await (const batch of batches()) {
    const pending = scorer.score(batch.rows);
    pending.catch(() => {}); // awaited in turn below; a failure must not go unhandled meanwhile
    inflight.push([batch, pending]);
    while (inflight.length >= concurrency) await collect(...(inflight.shift() as [Batch, Promise<ScoreResult[]>]));
  }
  while (inflight.length > 0) await collect(...(inflight.shift() as [Batch, Promise<ScoreResult[]>]));

  if (partInput > 0) flush();
  await Promise.all(uploads);
  // No row scored: no part (one left by an earlier attempt is removed).
  if (parts.length === 0) await output.remove(partName(index, plan.outputFormat));
  await writeErrors();
  const report: BatchShardReport = {
    shard: index,
    rows: scored,
    errorRows: refused.length,
    seconds: round((performance.now() - t0) / 1000),
  };
  await output.put(markerName(index), Buffer.from(JSON.stringify({ ...report, parts })));
  log?.info(
    { ...report, parts: parts.length, rowsPerSecond: Math.round((scored + refused.length) / Math.max(report.seconds, 1e-3)) },
    'shard done',
  );
  return report;
}

const round = (s: number) => Math.round(s * 1000) / 1000;

/** The plan must be this spec's: the same parts that shape the output (the input files are the plan's own). */
function checkPlan(spec: BatchJobSpec, plan: BatchPlan, output: Store): void {
  const outputFormat = spec.output.format ?? spec.input.format ?? plan.outputFormat;
  const files = plan.shape.files.map(([name, size, version]) => ({ name, size, version }));
  const shape = planShape(spec, outputFormat, files);
  if (fingerprint(shape) !== plan.fingerprint) {
    throw msError('MS_ERR_BATCH_PLAN_CHANGED', { uri: output.display, detail: shapeChanges(plan.shape, shape) });
  }
}

// ---- entry points -------------------------------------------------------------------------------------------------

/** Failures the input (or spec) causes: retrying the pod cannot mend them. */
const TERMINAL = new Set<ErrorCode>([
  'MS_ERR_BATCH_INPUT_FORMAT',
  'MS_ERR_BATCH_COLUMN_MISSING',
  'MS_ERR_BATCH_TOO_MANY_ROW_ERRORS',
  'MS_ERR_BATCH_INPUT_NOT_FOUND',
  'MS_ERR_BATCH_PLAN_CHANGED',
  'MS_ERR_BATCH_SPEC_INVALID',
]);

export function exitCodeFor(err: unknown): number {
  return isModelshipError(err) && TERMINAL.has(err.code) ? BATCH.terminalExitCode : 1;
}

export interface MainOptions {
  env?: NodeJS.ProcessEnv;
  /** process.exit, unless a test runs the entry point in its own process. */
  exit?: (code: number) => void;
}

/** Writes the report as one JSON line where Kubernetes reads the termination message (at most 4 KiB). */
function writeReport(path: string, report: BatchPlanReport | BatchShardReport, log: Logger): void {
  const line = `${JSON.stringify(report)}\n`;
  try {
    writeFileSync(path, line.length > 4000 ? `${JSON.stringify({ ...report, message: report.message?.slice(0, 2000) })}\n` : line);
  } catch (err) {
    log.warn({ path, err: describe(err) }, 'cannot write the termination log');
  }
}

async function entry<R extends BatchPlanReport | BatchShardReport>(
  role: string,
  opts: MainOptions,
  run: (env: NodeJS.ProcessEnv, log: Logger) => Promise<R>,
  failed: (code: string, message: string) => R,
): Promise<void> {
  const env = opts.env ?? process.env;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const log = createLogger(env[ENV.logLevel] ?? 'info', { role });
  const terminationLog = env[ENV.terminationLog] ?? PATHS.terminationLog;
  let report: R;
  let code = 0;
  try {
    report = await run(env, log);
  } catch (err) {
    code = exitCodeFor(err);
    const errCode = isModelshipError(err) ? err.code : 'MS_ERR_SERVER_INTERNAL';
    report = failed(errCode, describe(err));
    log.error({ code: errCode, err: describe(err), retried: code !== BATCH.terminalExitCode }, `${role} failed`);
  }
  writeReport(terminationLog, report, log);
  exit(code);
}

/** `main.ts batch-plan`: plans the batch (or finds its plan) and reports the shard count. */
export function planMain(opts: MainOptions = {}): Promise<void> {
  return entry(
    'batch-plan',
    opts,
    (env, log) => planBatch(parseSpec(env[ENV.batchSpec]), { log }),
    (code, message) => ({ shards: 0, rows: 0, files: 0, code, message }),
  );
}

/** `main.ts batch-run`: runs the shard of this pod's completion index against the model sidecar's socket. */
export function runMain(opts: MainOptions = {}): Promise<void> {
  const t0 = performance.now();
  let shard = -1;
  return entry(
    'batch-run',
    opts,
    async (env, log) => {
      const spec = parseSpec(env[ENV.batchSpec]);
      shard = parseIndex(env[ENV.jobCompletionIndex]);
      const { SocketScorer } = await import('./socket-scorer.ts');
      const scorer = await SocketScorer.connect(env[ENV.batchSocket] || BATCH.socket, { log });
      try {
        return await runShard(spec, shard, scorer, { log });
      } finally {
        await scorer.close().catch(() => {});
      }
    },
    (code, message) => ({ shard, rows: 0, errorRows: 0, seconds: round((performance.now() - t0) / 1000), code, message }),
  );
}
