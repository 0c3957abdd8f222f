// Running one prediction for a protocol handler: the per-request timeout (504), the in-flight count and
// the request context handed to the plugin.
//
// Hot-path economy: no timer and no AbortController per request. Pending requests sit in a set that one
// sweeper timer checks (every timeout/10, at most 100 ms); a request's AbortSignal is made only if the
// plugin reads `ctx.signal`. A timeout therefore fires within 10% (≤ 100 ms) after its deadline.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Outputs } from '../engines/outputs.ts';
import type { Engine, RequestContext } from '../engines/types.ts';
import { isModelshipError, type ModelshipError, msError } from '../errors.ts';
import type { Recorder } from '../inference-log/recorder.ts';
import type { ServedModel } from '../model.ts';
import type { RuntimeMetrics } from '../observability/metrics.ts';

export interface InferDeps {
  model: ServedModel;
  metrics: RuntimeMetrics;
  log: Logger;
  requestTimeoutMs: number;
  recorder: Recorder;
  /** Made on first use; shared by every request of one app. */
  deadlines?: Deadlines;
  /** The inference routes' onResponse hook (metrics, request log), set by build(). */
  onResponse?: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
}

class Pending implements RequestContext {
  readonly requestId: string;
  readonly modelName: string;
  readonly deadline: number;
  private readonly parent: Logger;
  private child: Logger | undefined;
  private controller: AbortController | undefined;
  expired: ModelshipError | undefined;
  reject: ((err: Error) => void) | undefined;

  constructor(parent: Logger, modelName: string, requestId: string, deadline: number) {
    this.parent = parent;
    this.modelName = modelName;
    this.requestId = requestId;
    this.deadline = deadline;
    this.child = undefined;
    this.controller = undefined;
    this.expired = undefined;
    this.reject = undefined;
  }

  get log(): Logger {
    this.child ??= this.parent.child({ requestId: this.requestId });
    return this.child;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort(this.expired);
    }
    return this.controller.signal;
  }

  expire(err: ModelshipError): void {
    this.expired = err;
    this.controller?.abort(err);
    this.reject?.(err);
  }
}

export class Deadlines {
  private readonly pending = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;
  private readonly ms: number;
  private readonly interval: number;

  constructor(timeoutMs: number) {
    this.ms = timeoutMs;
    this.interval = Math.max(5, Math.min(100, Math.floor(timeoutMs / 10)));
  }

  add(p: Pending): void {
    this.pending.add(p);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.interval);
      this.timer.unref();
    }
  }

  delete(p: Pending): void {
    this.pending.delete(p);
    if (this.pending.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const p of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(p);
        p.expire(msError('MS_ERR_PREDICT_TIMEOUT', { ms: this.ms }));
      }
    }
  }
}

export async function withDeadline<T>(
  deps: InferDeps,
  requestId: string,
  call: (engine: Engine, ctx: RequestContext) => Promise<T>,
): Promise<T> {
  const engine = deps.model.requireEngine();
  deps.deadlines ??= new Deadlines(deps.requestTimeoutMs);
  const deadlines = deps.deadlines;
  const ctx = new Pending(deps.log, deps.model.name, requestId, Date.now() + deps.requestTimeoutMs);
  const metrics = deps.metrics;
  metrics.inFlightCount++;
  deadlines.add(ctx);
  try {
    return await new Promise<T>((resolve, reject) => {
      ctx.reject = reject;
      call(engine, ctx).then(resolve, reject);
    });
  } finally {
    deadlines.delete(ctx);
    metrics.inFlightCount--;
  }
}

export async function predict(deps: InferDeps, requestId: string, rows: Record<string, unknown>[]): Promise<Outputs[]> {
  const p = await withDeadline(deps, requestId, (engine, ctx) => engine.predict(rows, ctx));
  if (p.signals) deps.recorder.signals(p.signals, requestId);
  return p.outputs;
}

/** The `error` of an inference record: what the client was told. */
function errorFacts(err: unknown): { code: string; message: string; status: number } {
  if (isModelshipError(err)) return { code: err.code, message: err.message, status: err.statusCode };
  return { code: 'MS_ERR_SERVER_INTERNAL', message: (err as Error)?.message ?? String(err), status: 500 };
}

/**
 * Runs one inference and, when the request is sampled (decided before it runs, so a record's presence never
 * depends on how it went), records its input with its output or its error.
 */
export async function recorded<T>(
  deps: InferDeps,
  reply: { elapsedTime: number },
  facts: { requestId: string; protocol: 'v2' | 'v1'; inferenceId?: string | undefined; input: unknown },
  call: () => Promise<{ value: T; output: unknown }>,
): Promise<T> {
  if (!deps.recorder.sample()) return (await call()).value;
  try {
    const r = await call();
    deps.recorder.inference({ ...facts, latencyMs: reply.elapsedTime, output: r.output });
    return r.value;
  } catch (err) {
    deps.recorder.inference({ ...facts, latencyMs: reply.elapsedTime, error: errorFacts(err) });
    throw err;
  }
}
