// The protocol-agnostic data plane: everything a request does between its protocol's decoding and
// encoding, written once. Model name/version check, readiness, the inputs checked against the model's
// declared inputs, the per-request deadline (504), the in-flight count, the plugin's signals, the
// inference record (sampled when the request starts, so a record's presence never depends on how it
// went), feedback and custom routes. REST v2, KServe v1 and custom routes are thin adapters onto it.
//
// Hot-path economy: no timer and no AbortController per request. Running requests sit in a set that one
// sweeper timer checks (every timeout/10, at most 100 ms); a request's AbortSignal is made only if the
// engine or plugin reads `ctx.signal`. A timeout therefore fires within 10% (≤ 100 ms) after its deadline.
import type { Logger } from 'pino';
import type { TensorMetadata } from './bundle/manifest.ts';
import type { Outputs } from './engines/outputs.ts';
import { Batcher, type BatchingSettings } from './batching.ts';
import type { CustomRouteRequest, CustomRouteResponse, Engine, Prediction, PredictOptions, RequestContext } from './engines/types.ts';
import { isModelshipError, type ModelshipError, msError } from './errors.ts';
import type { Protocol } from './inference-log/record.ts';
import type { Recorder } from './inference-log/recorder.ts';
import type { ServedModel } from './model.ts';
import type { RuntimeMetrics } from './observability/metrics.ts';
import { compileInputCheck, type InputCheck } from './protocol/inputs.ts';

export type { Protocol };

/** One inference as the record sees it: started by an adapter, finished after its response. */
export interface Inference {
  readonly requestId: string;
  readonly protocol: Protocol;
  readonly inferenceId: string | undefined;
  readonly input: unknown;
  /** Whether it gets an inference record; decided before it runs. */
  readonly sampled: boolean;
  /** The caller's remaining time (a composing model's call: TIMEOUT_HEADER), when it is shorter than ours. */
  readonly timeoutMs?: number | undefined;
  /** What the client got, in its protocol's form. */
  output: unknown;
}

/** The context a plugin call runs in: its request id, its deadline, a logger and a signal made on demand. */
class CallContext implements RequestContext {
  readonly requestId: string;
  readonly modelName: string;
  readonly deadline: number;
  /** The time it was given: the server's request timeout, or a caller's shorter one. */
  readonly budgetMs: number;
  private readonly parent: Logger;
  private child: Logger | undefined;
  private controller: AbortController | undefined;
  expired: ModelshipError | undefined;
  reject: ((err: Error) => void) | undefined;
  parameters: Record<string, unknown> | undefined;

  constructor(parent: Logger, modelName: string, requestId: string, deadline: number, parameters?: Record<string, unknown>) {
    this.parent = parent;
    this.modelName = modelName;
    this.requestId = requestId;
    this.deadline = deadline;
    this.budgetMs = Math.max(0, Math.round(deadline - Date.now()));
    this.child = undefined;
    this.controller = undefined;
    this.expired = undefined;
    this.reject = undefined;
    this.parameters = parameters;
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

class Deadlines {
  private readonly running = new Set<CallContext>();
  private timer: NodeJS.Timeout | undefined;
  private readonly interval: number;

  constructor(timeoutMs: number) {
    this.interval = Math.max(5, Math.min(100, Math.floor(timeoutMs / 10)));
  }

  add(c: CallContext): void {
    this.running.add(c);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.interval);
      this.timer.unref();
    }
  }

  delete(c: CallContext): void {
    this.running.delete(c);
    if (this.running.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.running) {
      if (c.deadline <= now) {
        this.running.delete(c);
        c.expire(msError('MS_ERR_PREDICT_TIMEOUT', { ms: c.budgetMs }));
      }
    }
  }
}

/** The `error` of an inference record: what the client was told. */
function errorFacts(err: unknown): { code: string; message: string; status: number } {
  if (isModelshipError(err)) return { code: err.code, message: err.message, status: err.statusCode };
  return { code: 'MS_ERR_SERVER_INTERNAL', message: (err as Error)?.message ?? String(err), status: 500 };
}

export interface DataPlaneOptions {
  model: ServedModel;
  metrics: RuntimeMetrics;
  log: Logger;
  recorder: Recorder;
  requestTimeoutMs: number;
  /** Adaptive batching from the ModelServing (it wins over the manifest's `batching`); unset: the manifest's. */
  batching?: BatchingSettings | undefined;
}

const DEFAULT_BATCH = { maxBatchSize: 32, maxLatencyMs: 5 };

export class DataPlane {
  readonly model: ServedModel;
  readonly metrics: RuntimeMetrics;
  readonly recorder: Recorder;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly deadlines: Deadlines;
  /** Compiled once per set of declared inputs (they are fixed when the model becomes ready). */
  private checked: { inputs: readonly TensorMetadata[]; check: InputCheck } | undefined;
  private readonly batching: BatchingSettings | undefined;
  /** Made once the model is ready (the manifest may ask for batching); undefined: off. */
  private batcher: { manifest: object; batcher: Batcher | undefined } | undefined;

  constructor(o: DataPlaneOptions) {
    this.model = o.model;
    this.metrics = o.metrics;
    this.log = o.log;
    this.recorder = o.recorder;
    this.timeoutMs = o.requestTimeoutMs;
    this.deadlines = new Deadlines(o.requestTimeoutMs);
    this.batching = o.batching;
  }

  /** The batcher for the loaded model, if batching is on (configured, else asked for by the manifest). */
  private batcherFor(): Batcher | undefined {
    const manifest = this.model.manifest;
    if (this.batcher?.manifest === manifest) return this.batcher.batcher;
    const asked = this.batching ?? (manifest.batching ? { ...DEFAULT_BATCH, ...manifest.batching } : undefined);
    const settings = asked && asked.maxBatchSize > 1 ? asked : undefined;
    const metrics = this.metrics;
    const name = this.model.name;
    const batcher = settings
      ? new Batcher(
          settings,
          (id, rows, opts, deadline) => this.withDeadline(id, (e, ctx) => e.predict(rows, ctx, opts), opts?.parameters, deadline, false),
          () => msError('MS_ERR_PREDICT_TIMEOUT', { ms: this.timeoutMs }),
          { batch: (size) => metrics.batchSize.labels(name).observe(size), waited: (s) => metrics.batchWait.labels(name).observe(s) },
        )
      : undefined;
    this.batcher = { manifest, batcher };
    return batcher;
  }

  /** 404 unless the name (and version, when given) is the served model's. */
  checkModel(name: string, version?: string): void {
    const model = this.model;
    if (name !== model.name) throw msError('MS_ERR_MODEL_NOT_FOUND', { name, served: model.name });
    if (version !== undefined && version !== model.version) {
      throw msError('MS_ERR_MODEL_VERSION_NOT_FOUND', { name, version, served: model.version ?? '(none)' });
    }
  }

  /** Starts an inference: whether it is recorded is decided now. */
  begin(requestId: string, protocol: Protocol, input: unknown, inferenceId?: string, callerTimeout?: unknown): Inference {
    const inf: Inference = { requestId, protocol, inferenceId, input, sampled: this.recorder.sample(), output: undefined };
    const ms = typeof callerTimeout === 'string' ? Number(callerTimeout) : Number.NaN;
    return Number.isInteger(ms) && ms > 0 && ms < this.timeoutMs ? { ...inf, timeoutMs: ms } : inf;
  }

  /** After the response went out: the record of a sampled inference, with its output or its error. */
  finish(inf: Inference, latencyMs: number, error: unknown): void {
    if (!inf.sampled) return;
    const facts = { requestId: inf.requestId, protocol: inf.protocol, inferenceId: inf.inferenceId, input: inf.input, latencyMs };
    if (error !== undefined || inf.output === undefined) {
      this.recorder.inference({ ...facts, error: errorFacts(error ?? msError('MS_ERR_SERVER_INTERNAL', { detail: 'no output' })) });
    } else this.recorder.inference({ ...facts, output: inf.output });
  }

  /** Runs a call on the engine under the request's deadline. */
  async withDeadline<T>(
    requestId: string,
    call: (engine: Engine, ctx: RequestContext) => Promise<T>,
    parameters?: Record<string, unknown>,
    deadline = Date.now() + this.timeoutMs,
    counted = true,
  ): Promise<T> {
    const engine = this.model.requireEngine();
    const ctx = new CallContext(this.log, this.model.name, requestId, deadline, parameters);
    const metrics = this.metrics;
    if (counted) metrics.inFlightCount++;
    this.deadlines.add(ctx);
    try {
      return await new Promise<T>((resolve, reject) => {
        ctx.reject = reject;
        call(engine, ctx).then(resolve, reject);
      });
    } finally {
      this.deadlines.delete(ctx);
      if (counted) metrics.inFlightCount--;
    }
  }

  /** One prediction per row: the rows are checked against the declared inputs before any plugin code runs. */
  async predict(inf: Inference, rows: Record<string, unknown>[], opts?: PredictOptions): Promise<Outputs[]> {
    const inputs = this.model.inputs;
    if (inputs.length > 0) {
      if (this.checked?.inputs !== inputs) this.checked = { inputs, check: compileInputCheck(inputs) };
      this.checked.check(rows);
    }
    const batcher = this.batcherFor();
    let p: Prediction;
    if (batcher) {
      this.model.requireEngine();
      this.metrics.inFlightCount++;
      try {
        // A batch runs under its members' earliest deadline: a caller's shorter time would fail the others too,
        // so batched requests keep the server's own (the caller stops waiting at its own deadline anyway).
        p = await batcher.submit(inf.requestId, rows, opts, Date.now() + this.timeoutMs);
      } finally {
        this.metrics.inFlightCount--;
      }
    } else {
      p = await this.withDeadline(
        inf.requestId,
        (engine, ctx) => engine.predict(rows, ctx, opts),
        opts?.parameters,
        Date.now() + (inf.timeoutMs ?? this.timeoutMs),
      );
    }
    if (p.signals) this.recorder.signals(p.signals, inf.requestId);
    return p.outputs;
  }

  /**
   * Feedback for an earlier inference (`id`: its request id). The feedback record is written first, so a
   * plugin failure loses no ground truth; then the plugin's feedback() runs under the deadline.
   */
  async feedback(protocol: 'v2' | 'v1', requestId: string, body: { id: string } & Record<string, unknown>) {
    const { model, recorder } = this;
    const engine = model.requireEngine();
    if (!engine.hasFeedback && recorder.topic === undefined) throw msError('MS_ERR_FEEDBACK_UNSUPPORTED', { name: model.name });
    const { id, ...truth } = body;
    const logged = recorder.feedback(protocol, id, requestId, truth);
    const response: { id: string; model: string; logged: boolean; result?: unknown } = { id, model: model.name, logged };
    if (engine.hasFeedback) {
      const r = await this.withDeadline(requestId, (e, ctx) => e.feedback(body, ctx));
      recorder.signals(r.signals, id);
      if (r.value !== undefined) response.result = r.value;
    }
    return response;
  }

  route(index: number, req: CustomRouteRequest, requestId: string): Promise<CustomRouteResponse> {
    return this.withDeadline(requestId, (e, ctx) => e.callRoute(index, req, ctx));
  }
}
