// The plan of a batch prediction: which rows each shard (an index of the shard Job) reads. `planShards` is the pure
// cut; `planBatch` lists the input, reads Parquet footers (ranged reads) and counts CSV / JSON Lines rows, and
// writes `<output>/_modelship/plan.json` once. A re-run with the same input and spec reuses that plan as it is, so
// shard numbers (and the parts and markers named after them) keep their meaning; other input is refused.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { BATCH, type BatchFormat, type BatchJobSpec, type BatchPlanReport } from '../contract.ts';
import { msError } from '../errors.ts';
import { redactUri } from '../bundle/uri.ts';
import { countJsonl, formatOfName, readParquetFooter, scanCsv } from './formats.ts';
import { type Store, type StoredFile, type StoreOptions, storeFor } from './store.ts';

export const PLAN_FILE = `${BATCH.metaDir}/plan.json`;

/** A file as the cut sees it. */
export interface PlanUnit {
  name: string;
  rows: number;
  /** Rows of each row group (Parquet): a file with more rows than a shard is cut between them. */
  rowGroups?: number[] | undefined;
}

/** Rows `rowStart` … `rowEnd - 1` of one file. */
export interface ShardSlice {
  file: string;
  rowStart: number;
  rowEnd: number;
}

export interface PlannedShard {
  rows: number;
  slices: ShardSlice[];
}

export interface PlannedFile extends StoredFile {
  format: BatchFormat;
  rows: number;
  rowGroups?: number[];
  /** CSV: the columns whose every cell is a number (formats.ts reads them as numbers). */
  numericColumns?: string[];
}

/** What the output depends on: the input files and the spec's parts that shape the rows, parts and shards. */
export interface PlanShape {
  /** The model's identity (spec.model), when the spec names one. */
  model: string | null;
  input: { uri: string; format: BatchFormat | null };
  output: { format: BatchFormat };
  columns: Record<string, string | string[]> | null;
  keyColumns: string[] | null;
  rowsPerShard: number;
  parallelism: number | null;
  files: [name: string, size: number, version: string][];
}

export interface BatchPlan {
  version: 1;
  /** sha256 of the shape. */
  fingerprint: string;
  shape: PlanShape;
  outputFormat: BatchFormat;
  rows: number;
  files: PlannedFile[];
  shards: PlannedShard[];
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Cuts files into shards (pure, deterministic: files in name order). A Parquet file with more than `rowsPerShard`
 * rows is cut into shards of whole row groups, each as close to `rowsPerShard` rows as the groups allow without
 * passing it (a larger group is a shard alone); its last cut is packed with the smaller files after it. Smaller files
 * are packed, in order, into shards of at most `rowsPerShard` rows; a CSV or JSON Lines file (no row groups) is never
 * cut. Empty files get no shard.
 */
export function planShards(files: readonly PlanUnit[], rowsPerShard: number): PlannedShard[] {
  const shards: PlannedShard[] = [];
  let open: PlannedShard | undefined;
  const close = () => {
    if (open) shards.push(open);
    open = undefined;
  };
  for (const f of [...files].sort(byName)) {
    if (f.rows <= 0) continue;
    if (f.rows <= rowsPerShard) {
      if (open && open.rows + f.rows > rowsPerShard) close();
      open ??= { rows: 0, slices: [] };
      open.slices.push({ file: f.name, rowStart: 0, rowEnd: f.rows });
      open.rows += f.rows;
      continue;
    }
    close();
    const groups = f.rowGroups?.length ? f.rowGroups : [f.rows];
    let start = 0;
    let rows = 0;
    let at = 0;
    for (const g of groups) {
      if (rows > 0 && rows + g > rowsPerShard) {
        shards.push({ rows, slices: [{ file: f.name, rowStart: start, rowEnd: start + rows }] });
        start += rows;
        rows = 0;
      }
      rows += g;
      at += g;
    }
    // The file's last cut stays open: the small files after it are packed with it (fewer, fuller shards).
    if (rows > 0) open = { rows, slices: [{ file: f.name, rowStart: start, rowEnd: at }] };
  }
  close();
  return shards;
}

/**
 * Rows a shard aims at (pure): at most rowsPerShard, and few enough that `parallelism` pods each start once (a pod's
 * start, bundle fetch and model load cost seconds: waves of small shards spend more time starting than scoring).
 */
export function shardTarget(rows: number, rowsPerShard: number, parallelism?: number): number {
  if (!parallelism || rows === 0) return rowsPerShard;
  return Math.max(1, Math.min(rowsPerShard, Math.ceil(rows / parallelism)));
}

/** The shape of a spec over a listing (pure). */
export function planShape(spec: BatchJobSpec, outputFormat: BatchFormat, files: readonly StoredFile[]): PlanShape {
  return {
    model: spec.model ?? null,
    input: { uri: redactUri(spec.input.uri), format: spec.input.format ?? null },
    output: { format: outputFormat },
    // Sorted: the same mapping is the same shape whatever order its inputs came in.
    columns: spec.columns ? Object.fromEntries(Object.entries(spec.columns).sort(([a], [b]) => (a < b ? -1 : 1))) : null,
    keyColumns: spec.keyColumns?.length ? spec.keyColumns : null,
    rowsPerShard: spec.rowsPerShard,
    parallelism: spec.parallelism ?? null,
    files: files.map((f) => [f.name, f.size, f.version]),
  };
}

export function fingerprint(shape: PlanShape): string {
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

/** What differs between two shapes, in a few words (pure). */
export function shapeChanges(was: PlanShape, now: PlanShape): string {
  const changes: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (was.model !== now.model) changes.push(`model ${was.model ?? '(unnamed)'} → ${now.model ?? '(unnamed)'}`);
  if (!same(was.input, now.input)) changes.push(`input ${was.input.uri} → ${now.input.uri}`);
  if (!same(was.output, now.output)) changes.push(`output format ${was.output.format} → ${now.output.format}`);
  if (!same(was.columns, now.columns)) changes.push('columns changed');
  if (!same(was.keyColumns, now.keyColumns)) changes.push('keyColumns changed');
  if (was.rowsPerShard !== now.rowsPerShard) changes.push(`rowsPerShard ${was.rowsPerShard} → ${now.rowsPerShard}`);
  if (was.parallelism !== now.parallelism) changes.push(`parallelism ${was.parallelism} → ${now.parallelism}`);
  const before = new Map(was.files.map(([n, s, v]) => [n, `${s}/${v}`]));
  const after = new Map(now.files.map(([n, s, v]) => [n, `${s}/${v}`]));
  const list = (names: string[], what: string) => {
    if (names.length) changes.push(`${what} ${names.slice(0, 3).join(', ')}${names.length > 3 ? ` and ${names.length - 3} more` : ''}`);
  };
  list(
    [...after.keys()].filter((n) => !before.has(n)),
    'new files',
  );
  list(
    [...before.keys()].filter((n) => !after.has(n)),
    'files gone',
  );
  list(
    [...after.keys()].filter((n) => before.has(n) && before.get(n) !== after.get(n)),
    'files changed',
  );
  return changes.join('; ') || 'fingerprint differs';
}

/** The input's files this batch reads: those of a known format (or all, given a format), not under the output. */
export async function listInput(spec: BatchJobSpec, input: Store, output: Store): Promise<(StoredFile & { format: BatchFormat })[]> {
  const listed = await input.list();
  // An output inside the input directory: its parts are not input.
  const outputBelow = output.display.startsWith(input.display) ? output.display.slice(input.display.length) : undefined;
  const files: (StoredFile & { format: BatchFormat })[] = [];
  for (const f of listed) {
    if (outputBelow !== undefined && (outputBelow === '' || f.name.startsWith(outputBelow))) continue;
    const format = spec.input.format ?? formatOfName(f.name);
    if (format) files.push({ ...f, format });
  }
  if (files.length === 0) {
    throw msError('MS_ERR_BATCH_INPUT_NOT_FOUND', {
      uri: redactUri(spec.input.uri),
      detail: listed.length
        ? ` (${listed.length} files, none .parquet, .csv, .jsonl, .ndjson or .json: set input.format to read them as one)`
        : '',
    });
  }
  return files;
}

/** Runs `fn` over `items`, at most `limit` at once, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function describeFile(store: Store, f: StoredFile & { format: BatchFormat }): Promise<PlannedFile> {
  if (f.format === 'parquet') {
    const reader = await store.reader(f.name);
    if (reader.version !== f.version) {
      throw msError('MS_ERR_BATCH_STORAGE', {
        endpoint: store.display,
        operation: 'plan',
        key: f.name,
        detail: 'the file changed while it was planned',
      });
    }
    const footer = await readParquetFooter(reader, store.display + f.name);
    return { ...f, rows: footer.rows, rowGroups: footer.rowGroups };
  }
  const stream = await store.stream(f.name);
  if (f.format === 'csv') {
    const scan = await scanCsv(stream, store.display + f.name);
    return { ...f, rows: scan.rows, numericColumns: scan.numericColumns };
  }
  return { ...f, rows: await countJsonl(stream) };
}

export interface PlanOptions {
  log?: Logger;
  store?: StoreOptions;
  /** Files described at once (footers read, rows counted). */
  concurrency?: number;
}

/** Reads the plan under the output, if there is one. */
export async function readPlan(output: Store): Promise<BatchPlan | undefined> {
  const bytes = await output.get(PLAN_FILE);
  if (!bytes) return undefined;
  try {
    const plan = JSON.parse(bytes.toString('utf8')) as BatchPlan;
    if (plan.version !== 1 || !Array.isArray(plan.shards)) throw new Error(`unknown plan version ${String(plan.version)}`);
    return plan;
  } catch (err) {
    throw msError('MS_ERR_BATCH_PLAN_CHANGED', {
      uri: output.display,
      detail: `${PLAN_FILE} is not a plan of this version: ${String(err)}`,
    });
  }
}

/** The plan's report (the plan container's termination message). */
export function planReport(plan: BatchPlan): BatchPlanReport {
  return { shards: plan.shards.length, rows: plan.rows, files: plan.files.length };
}

/** Lists, describes and cuts the input, and writes the plan under the output (or reuses the one there). */
export async function planBatch(spec: BatchJobSpec, opts: PlanOptions = {}): Promise<BatchPlanReport> {
  const input = await storeFor(spec.input, opts.store);
  const output = await storeFor(spec.output, { ...opts.store, directory: true });
  const files = await listInput(spec, input, output);
  const outputFormat = spec.output.format ?? spec.input.format ?? (files[0] as { format: BatchFormat }).format;
  const shape = planShape(spec, outputFormat, files);
  const print = fingerprint(shape);

  const existing = await readPlan(output);
  if (existing) {
    if (existing.fingerprint !== print) {
      throw msError('MS_ERR_BATCH_PLAN_CHANGED', { uri: output.display, detail: shapeChanges(existing.shape, shape) });
    }
    opts.log?.info({ output: output.display, shards: existing.shards.length }, 'reusing the plan already written');
    return planReport(existing);
  }

  const t0 = performance.now();
  const described = await mapLimit(files, opts.concurrency ?? 8, (f) => describeFile(input, f));
  const shards = planShards(
    described,
    shardTarget(
      described.reduce((n, f) => n + f.rows, 0),
      spec.rowsPerShard,
      spec.parallelism,
    ),
  );
  const plan: BatchPlan = {
    version: 1,
    fingerprint: print,
    shape,
    outputFormat,
    rows: described.reduce((n, f) => n + f.rows, 0),
    files: described,
    shards,
  };
  await output.put(PLAN_FILE, Buffer.from(JSON.stringify(plan)));
  opts.log?.info(
    {
      input: input.display,
      output: output.display,
      files: files.length,
      rows: plan.rows,
      shards: shards.length,
      seconds: (performance.now() - t0) / 1000,
    },
    'plan written',
  );
  return planReport(plan);
}
