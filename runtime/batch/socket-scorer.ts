// The driver's Scorer in a shard pod: the model sidecar (`main.ts batch-model`) over its Unix socket, with an undici
// Pool. Its API: GET /ready (200 once loaded), GET /metadata ({inputs, outputs, capacity}), POST /score
// ({rows} → {results}, one per row: outputs, or the row's refusal). A 5xx or a dropped connection is retried a few
// times with backoff, then the shard fails (exit 1: the pod is retried); a refused row is a result, not a failure.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import { describe, isModelshipError, msError } from '../errors.ts';
import type { Scorer, ScoreResult } from './driver.ts';

export interface SocketScorerOptions {
  log?: Logger;
  /** How long to wait for GET /ready (the sidecar's startup probe normally saw it already). */
  readyTimeoutMs?: number;
  /** Attempts per batch (5xx, dropped connection). */
  attempts?: number;
  backoffMs?: number;
  /** Bound on one /score call: a batch the model never answers fails the attempt. */
  requestTimeoutMs?: number;
}

interface Metadata {
  inputs?: { name: string }[];
  capacity?: number;
}

class Retryable extends Error {}

export class SocketScorer implements Scorer {
  readonly concurrency: number;
  readonly #pool: Pool;
  readonly #inputs: string[];
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #log: Logger | undefined;

  private constructor(pool: Pool, meta: Metadata, opts: SocketScorerOptions) {
    this.#pool = pool;
    this.#inputs = (meta.inputs ?? []).map((i) => i.name).filter((n) => typeof n === 'string');
    this.concurrency = Math.max(1, Math.floor(Number(meta.capacity)) || 1);
    this.#attempts = opts.attempts ?? 4;
    this.#backoffMs = opts.backoffMs ?? 500;
    this.#log = opts.log;
  }

  /** Waits until the model answers /ready, then reads its metadata. */
  static async connect(socketPath: string, opts: SocketScorerOptions = {}): Promise<SocketScorer> {
    const timeout = opts.requestTimeoutMs ?? 600_000;
    const pool = new Pool('http://model', { socketPath, headersTimeout: timeout, bodyTimeout: timeout });
    try {
      const deadline = Date.now() + (opts.readyTimeoutMs ?? 300_000);
      let last = '';
      for (;;) {
        try {
          const res = await pool.request({ path: '/ready', method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000 });
          await res.body.dump();
          if (res.statusCode === 200) break;
          last = `HTTP ${res.statusCode}`;
        } catch (err) {
          last = describe(err);
        }
        if (Date.now() > deadline) {
          throw msError('MS_ERR_MODEL_NOT_READY', {
            name: socketPath,
            detail: `no 200 from GET /ready within ${opts.readyTimeoutMs ?? 300_000} ms (${last})`,
          });
        }
        await delay(200);
      }
      const res = await pool.request({ path: '/metadata', method: 'GET' });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw msError('MS_ERR_MODEL_NOT_READY', { name: socketPath, detail: `GET /metadata answered ${res.statusCode}` });
      }
      const meta = (await res.body.json()) as Metadata;
      opts.log?.info({ socket: socketPath, inputs: meta.inputs?.map((i) => i.name), capacity: meta.capacity }, 'model ready');
      return new SocketScorer(pool, meta, opts);
    } catch (err) {
      await pool.destroy();
      throw err;
    }
  }

  inputs(): Promise<string[]> {
    return Promise.resolve(this.#inputs);
  }

  async score(rows: Record<string, unknown>[]): Promise<ScoreResult[]> {
    const body = JSON.stringify({ rows });
    let last = '';
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      try {
        return await this.#scoreOnce(body, rows.length);
      } catch (err) {
        if (isModelshipError(err)) throw err;
        last = describe(err);
        if (attempt < this.#attempts) {
          this.#log?.warn({ attempt, err: last }, 'a batch failed; retrying');
          await delay(this.#backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2));
        }
      }
    }
    throw msError('MS_ERR_PREDICT_FAILED', { detail: `the model failed a batch of ${rows.length} rows ${this.#attempts} times: ${last}` });
  }

  async #scoreOnce(body: string, count: number): Promise<ScoreResult[]> {
    const res = await this.#pool.request({ path: '/score', method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (res.statusCode >= 500) {
      const text = (await res.body.text()).slice(0, 300);
      throw new Retryable(`HTTP ${res.statusCode}: ${text}`);
    }
    if (res.statusCode === 413) {
      await res.body.dump();
      throw msError('MS_ERR_BATCH_SPEC_INVALID', {
        detail: `a batch of ${count} rows is larger than the model takes in one call: lower batchSize`,
      });
    }
    if (res.statusCode !== 200) {
      const text = (await res.body.text()).slice(0, 300);
      throw msError('MS_ERR_PREDICT_FAILED', { detail: `the model refused a whole batch (HTTP ${res.statusCode}): ${text}` });
    }
    const answer = (await res.body.json()) as { results?: unknown };
    if (!Array.isArray(answer.results) || answer.results.length !== count) {
      throw msError('MS_ERR_PREDICT_FAILED', {
        detail: `the model answered ${Array.isArray(answer.results) ? answer.results.length : 'no'} results for ${count} rows`,
      });
    }
    return answer.results as ScoreResult[];
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
