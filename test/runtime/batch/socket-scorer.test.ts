// The socket scorer against an HTTP server on a Unix socket that speaks the model sidecar's API (/ready, /metadata,
// /score), and the batch entry points (planMain, runMain) through it: reports in the termination log, exit codes.
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planMain, runMain } from '../../../runtime/batch/driver.ts';
import { writeTable } from '../../../runtime/batch/formats.ts';
import { SocketScorer } from '../../../runtime/batch/socket-scorer.ts';
import type { BatchJobSpec } from '../../../runtime/contract.ts';
import { isModelshipError } from '../../../runtime/errors.ts';

interface ModelServer {
  socket: string;
  /** Calls of /score so far. */
  scores: number;
  /** What the next /score calls do before answering normally. */
  faults: ('500' | 'drop')[];
  close(): Promise<void>;
}

/** The model: doubles `x`; refuses negative ones. Not ready for its first `notReady` /ready calls. */
async function modelServer(dir: string, notReady = 2): Promise<ModelServer> {
  const socket = join(dir, 'model.sock');
  const state: ModelServer = { socket, scores: 0, faults: [], close: async () => {} };
  const server: Server = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/ready') return json(notReady-- > 0 ? 503 : 200, {});
    if (req.url === '/metadata') return json(200, { inputs: [{ name: 'x', datatype: 'FP64', shape: [-1] }], outputs: [], capacity: 2 });
    if (req.url === '/score' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        state.scores++;
        const fault = state.faults.shift();
        if (fault === 'drop') return req.socket.destroy();
        if (fault === '500') return json(500, { error: 'worker died' });
        const { rows } = JSON.parse(Buffer.concat(chunks).toString()) as { rows: { x: number }[] };
        json(200, {
          results: rows.map((r) =>
            r.x < 0 ? { error: `x must be ≥ 0, got ${r.x}`, code: 'MS_ERR_INPUT_INVALID' } : { outputs: { y: r.x * 2 } },
          ),
        });
      });
      return;
    }
    json(404, {});
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

let dir: string;
let model: ModelServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ms-scorer-'));
  model = await modelServer(dir);
});

afterEach(async () => {
  await model.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SocketScorer', () => {
  it('waits for /ready, takes the inputs and capacity from /metadata, and scores rows in order', async () => {
    const scorer = await SocketScorer.connect(model.socket);
    try {
      expect(await scorer.inputs()).toEqual(['x']);
      expect(scorer.concurrency).toBe(2);
      expect(await scorer.score([{ x: 1 }, { x: -1 }, { x: 2.5 }])).toEqual([
        { outputs: { y: 2 } },
        { error: 'x must be ≥ 0, got -1', code: 'MS_ERR_INPUT_INVALID' },
        { outputs: { y: 5 } },
      ]);
    } finally {
      await scorer.close();
    }
  });

  it('retries a batch after a 5xx or a dropped connection; fails it with MS_ERR_PREDICT_FAILED after its attempts', async () => {
    const scorer = await SocketScorer.connect(model.socket, { backoffMs: 1, attempts: 3 });
    try {
      model.faults.push('500', 'drop');
      expect(await scorer.score([{ x: 3 }])).toEqual([{ outputs: { y: 6 } }]);
      expect(model.scores).toBe(3);

      model.faults.push('500', '500', '500');
      const err = await scorer.score([{ x: 3 }]).catch((e: unknown) => e);
      expect(isModelshipError(err) && err.code).toBe('MS_ERR_PREDICT_FAILED');
      expect(String((err as Error).message)).toMatch(/failed a batch of 1 rows 3 times: HTTP 500/);
    } finally {
      await scorer.close();
    }
  });

  it('a model that never gets ready → MS_ERR_MODEL_NOT_READY', async () => {
    const err = await SocketScorer.connect(join(dir, 'nobody.sock'), { readyTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(isModelshipError(err) && err.code).toBe('MS_ERR_MODEL_NOT_READY');
  });
});

describe('planMain and runMain', () => {
  async function entry(main: typeof runMain, env: Record<string, string>): Promise<{ code: number; report: Record<string, unknown> }> {
    const log = join(dir, `termination-${Math.random()}.log`);
    let code = -1;
    await main({ env: { MODELSHIP_LOG_LEVEL: 'silent', MODELSHIP_TERMINATION_LOG: log, ...env }, exit: (c) => (code = c) });
    const text = await readFile(log, 'utf8');
    expect(text.endsWith('\n') && text.split('\n').length).toBe(2);
    return { code, report: JSON.parse(text) as Record<string, unknown> };
  }

  it('plan, then each shard against the model; reports as one JSON line; input failures exit 3, others 1', async () => {
    await mkdir(join(dir, 'in'));
    const xs = [1, 2, -3, 4, 5];
    await writeFile(join(dir, 'in', 'x.jsonl'), writeTable('jsonl', [{ name: 'x', values: xs }], xs.length));
    const spec: BatchJobSpec = {
      input: { uri: join(dir, 'in') },
      output: { uri: join(dir, 'out'), format: 'jsonl' },
      batchSize: 2,
      maxRowErrors: 1,
      rowsPerShard: 100,
    };
    const env = { MODELSHIP_BATCH_SPEC: JSON.stringify(spec), MODELSHIP_BATCH_SOCKET: model.socket };

    // the shard before its plan: a storage failure, retried
    expect(await entry(runMain, { ...env, JOB_COMPLETION_INDEX: '0' })).toMatchObject({
      code: 1,
      report: { shard: 0, code: 'MS_ERR_BATCH_STORAGE' },
    });

    expect(await entry(planMain, env)).toEqual({ code: 0, report: { shards: 1, rows: 5, files: 1 } });
    const run = await entry(runMain, { ...env, JOB_COMPLETION_INDEX: '0' });
    expect(run).toMatchObject({ code: 0, report: { shard: 0, rows: 4, errorRows: 1 } });
    expect(
      (await readFile(join(dir, 'out', 'part-00000.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { _file: 'x.jsonl', _row: 0, y: 2 },
      { _file: 'x.jsonl', _row: 1, y: 4 },
      { _file: 'x.jsonl', _row: 3, y: 8 },
      { _file: 'x.jsonl', _row: 4, y: 10 },
    ]);
    expect(await entry(runMain, { ...env, JOB_COMPLETION_INDEX: '0' })).toMatchObject({
      code: 0,
      report: { shard: 0, rows: 4, skipped: true },
    });

    // terminal: the operator does not retry these
    expect(await entry(planMain, { MODELSHIP_BATCH_SPEC: '{"input": {}}' })).toMatchObject({
      code: 3,
      report: { shards: 0, code: 'MS_ERR_BATCH_SPEC_INVALID', message: expect.stringContaining('invalid batch spec: ') },
    });
    expect(await entry(runMain, { ...env, JOB_COMPLETION_INDEX: 'x' })).toMatchObject({
      code: 3,
      report: { code: 'MS_ERR_BATCH_SPEC_INVALID' },
    });
    const stricter = JSON.stringify({ ...spec, maxRowErrors: 0, output: { uri: join(dir, 'out0'), format: 'jsonl' } });
    expect(await entry(planMain, { ...env, MODELSHIP_BATCH_SPEC: stricter })).toMatchObject({ code: 0 });
    expect(await entry(runMain, { ...env, MODELSHIP_BATCH_SPEC: stricter, JOB_COMPLETION_INDEX: '0' })).toMatchObject({
      code: 3,
      report: { shard: 0, rows: 0, code: 'MS_ERR_BATCH_TOO_MANY_ROW_ERRORS' },
    });
  });
});
