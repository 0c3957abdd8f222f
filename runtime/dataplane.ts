// The protocol-agnostic data plane: one call per inference, `DataPlane.infer(call)`, owns every step between a
// protocol's decoding and its encoding, in one try/finally: the model check, decoding the rows, the input checks,
// admission (runtime/admission.ts), the deadlines, batching, the engine call, the outputs, the request metrics and
// the inference record. REST v2, KServe v1 and gRPC are decode → infer → encode; feedback and custom routes take
// the same admission and deadlines through `feedback()` and `route()`.
//
// Two deadlines per request:
// - the caller's (TIMEOUT_HEADER, a gRPC deadline), at most the server's: how long the request may wait, and
//   whether its answer is still wanted. When it passes the caller gets 504 at once, but work already at the
//   engine runs on (its answer is dropped) and keeps its admission slot until it ends: a caller's deadline never
//   kills a worker, so no client can make the server restart its workers.
// - the server's own request timeout: the engine's AbortSignal fires, and an engine that cannot stop its call
//   otherwise kills that worker (within a restart budget; see the engines).
//
// Hot-path economy: no timer and no AbortController per request. Running requests sit in a set that one sweeper
// timer checks (every timeout/10, 5..100 ms); a request's AbortSignal is made only if the engine or plugin reads
// `ctx.signal`. A deadline therefore fires within 10% (≤ 100 ms) after it passes.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SERVER_VERSION } from '../common/version.ts';
import { Admission, admissionSettings } from './admission.ts';
import { Batcher, type BatchingSettings } from './batching.ts';
import type { TensorMetadata } from './bundle/manifest.ts';
import { DEFAULTS, REQUEST_ID_PATTERN } from './contract.ts';
import type { Outputs } from './engines/outputs.ts';
import type { CustomRouteRequest, CustomRouteResponse, Engine, Prediction, PredictOptions, RequestContext } from './engines/types.ts';
import { isModelshipError, type ModelshipError, msError } from './errors.ts';
import type { Protocol } from './inference-log/record.ts';
import type { Recorder } from './inference-log/recorder.ts';
import type { ServedModel } from './model.ts';
import type { RuntimeMetrics } from './observability/metrics.ts';
import { compileInputCheck, type InputCheck } from './protocol/inputs.ts';

export type { Protocol };

const SERVER_NAME = 'modelship';
const EXTENSIONS = ['binary_tensor_data', 'model_repository'];

const REQUEST_ID = new RegExp(REQUEST_ID_PATTERN);

/** The request id of a request: the caller's, when it is a valid one, else a new one. */
export function requestIdFrom(header: unknown): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

/** One inference, as a protocol adapter hands it to `infer`. */
export interface InferCall<R> {
  protocol: Protocol;
  requestId: string;
  /** The model (and version) the request names. */
  model: string;
  version?: string | undefined;
  /** The request's own id (OIP `id`), when it has one. */
  inferenceId?: string | undefined;
  /** The caller's remaining time in ms, as sent (TIMEOUT_HEADER or a gRPC deadline). */
  callerTimeout?: unknown;
  /** The caller's credentials, passed on to the dependencies the model calls. */
  authorization?: string | undefined;
  /** The request's rows, one plugin input each; throws a 4xx for what cannot be decoded. */
  decode(): Record<string, unknown>[];
  opts?: PredictOptions | undefined;
  /** What the inference record holds as the input (made only for a recorded inference). */
  recordInput(): unknown;
  /** The outputs in the protocol's form, and what the inference record holds as the output. */
  encode(outputs: Outputs[]): { response: R; recorded: unknown };
}

/** The context a plugin call runs in: its request id, its deadlines, a logger and a signal made on demand. */
class CallContext implements RequestContext {
  readonly requestId: string;
  readonly modelName: string;
  /** When the caller stops waiting (epoch ms). */
  readonly deadline: number;
  /** When the server's own timeout stops the call (epoch ms); never before `deadline`. */
  readonly killAt: number;
  /** The time the caller was given, for the 504's message. */
  readonly budgetMs: number;
  readonly authorization: string | undefined;
  parameters: Record<string, unknown> | undefined;
  private readonly parent: Logger;
  private child: Logger | undefined;
  private controller: AbortController | undefined;
  killed: ModelshipError | undefined;
  /** Answers the caller now (its deadline passed); the call itself runs on. */
  reject: ((err: Error) => void) | undefined;
  replied: boolean;
  /** Gives its admission slot back (once): when the call ends, or at the server's timeout, whichever is first. */
  release: (() => void) | undefined;

  constructor(
    parent: Logger,
    modelName: string,
    requestId: string,
    deadline: number,
    killAt: number,
    parameters?: Record<string, unknown>,
    authorization?: string,
  ) {
    this.parent = parent;
    this.modelName = modelName;
    this.requestId = requestId;
    this.deadline = deadline;
    this.killAt = killAt;
    this.budgetMs = Math.max(0, Math.round(deadline - Date.now()));
    this.parameters = parameters;
    this.authorization = authorization;
    this.child = undefined;
    this.controller = undefined;
    this.killed = undefined;
    this.reject = undefined;
    this.replied = false;
    this.release = undefined;
  }

  get log(): Logger {
    this.child ??= this.parent.child({ requestId: this.requestId });
    return this.child;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.killed) this.controller.abort(this.killed);
    }
    return this.controller.signal;
  }

  /** The caller's deadline passed: answer 504 (the engine call runs on). */
  expire(): void {
    if (this.replied) return;
    this.replied = true;
    this.reject?.(msError('MS_ERR_PREDICT_TIMEOUT', { ms: this.budgetMs }));
  }

  /** The server's timeout passed: stop the call. */
  kill(err: ModelshipError): void {
    this.killed = err;
    this.controller?.abort(err);
    this.expire();
  }
}

class Deadlines {
  private readonly running = new Set<CallContext>();
  private timer: NodeJS.Timeout | undefined;
  private readonly interval: number;
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
    this.interval = Math.max(5, Math.min(100, Math.floor(timeoutMs / 10)));
  }

  /**
   * Runs a call: settles with it, or rejects with 504 when the caller's deadline passes first. A caller's deadline
   * shorter than the server's gets a timer of its own (the sweep is too coarse for it); an answer that arrives
   * after the deadline is not delivered either.
   */
  race<T>(ctx: CallContext, work: Promise<T>, onSettled?: () => void): Promise<T> {
    this.running.add(ctx);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.interval);
      this.timer.unref();
    }
    const own = ctx.deadline < ctx.killAt ? setTimeout(() => ctx.expire(), Math.max(0, ctx.deadline - Date.now())) : undefined;
    if (onSettled) {
      let given = false;
      ctx.release = () => {
        if (!given) {
          given = true;
          onSettled();
        }
      };
    }
    const settled = () => {
      if (own) {
        clearTimeout(own);
        // An answer that comes after the caller's deadline is not delivered either.
        if (Date.now() >= ctx.deadline) ctx.expire();
      }
      this.running.delete(ctx);
      if (this.running.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      ctx.release?.();
      ctx.replied = true;
    };
    return new Promise<T>((resolve, reject) => {
      ctx.reject = reject;
      work.then(
        (v) => {
          settled();
          resolve(v);
        },
        (err: unknown) => {
          settled();
          reject(err);
        },
      );
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.running) {
      if (c.killAt <= now) {
        this.running.delete(c);
        c.kill(msError('MS_ERR_PREDICT_TIMEOUT', { ms: this.timeoutMs }));
        // Its slot too: a call that cannot be stopped (in the server's thread, or past the kill budget) must not
        // hold it for good. The engine's own bounds (its workers) still hold the work that runs on.
        c.release?.();
      } else if (c.deadline <= now) c.expire();
    }
  }
}

/** The `error` of an inference record: what the client was told. */
function errorFacts(err: unknown): { code: string; message: string; status: number } {
  if (isModelshipError(err)) return { code: err.code, message: err.message, status: err.statusCode };
  return { code: 'MS_ERR_SERVER_INTERNAL', message: (err as Error)?.message ?? String(err), status: 500 };
}

function statusOf(err: unknown): number {
  return isModelshipError(err) ? err.statusCode : 500;
}

/** A caller's remaining time in ms, when it is a positive whole number. Pure. */
export function callerTimeoutMs(value: unknown): number | undefined {
  const ms = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : Number.NaN;
  return Number.isInteger(ms) && ms > 0 ? ms : undefined;
}

export interface AdmissionConfig {
  /** 0: from the engine's capacity. */
  maxConcurrency: number;
  /** 0: sized by the wait bound alone (at most 1024). */
  maxQueue: number;
  maxQueueWaitMs: number;
}

export interface DataPlaneOptions {
  model: ServedModel;
  metrics: RuntimeMetrics;
  log: Logger;
  recorder: Recorder;
  requestTimeoutMs: number;
  /** Adaptive batching from the ModelServing (it wins over the manifest's `batching`); unset: the manifest's. */
  batching?: BatchingSettings | undefined;
  admission?: Partial<AdmissionConfig> | undefined;
}

const DEFAULT_BATCH = { maxBatchSize: 32, maxLatencyMs: 5 };

/** What is made once per loaded engine: the batcher (if batching is on) and the admission bounds. */
interface PerEngine {
  engine: Engine;
  batcher: Batcher | undefined;
  admission: Admission;
  check: InputCheck | undefined;
  inputs: readonly TensorMetadata[];
}

export class DataPlane {
  readonly model: ServedModel;
  readonly metrics: RuntimeMetrics;
  readonly recorder: Recorder;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly deadlines: Deadlines;
  private readonly batching: BatchingSettings | undefined;
  private readonly admissionConfig: AdmissionConfig;
  private current: PerEngine | undefined;

  constructor(o: DataPlaneOptions) {
    this.model = o.model;
    this.metrics = o.metrics;
    this.log = o.log;
    this.recorder = o.recorder;
    this.timeoutMs = o.requestTimeoutMs;
    this.deadlines = new Deadlines(o.requestTimeoutMs);
    this.batching = o.batching;
    this.admissionConfig = {
      maxConcurrency: o.admission?.maxConcurrency ?? 0,
      maxQueue: o.admission?.maxQueue ?? DEFAULTS.maxQueue,
      maxQueueWaitMs: o.admission?.maxQueueWaitMs ?? DEFAULTS.maxQueueWaitMs,
    };
    o.metrics.queued = () => this.current?.admission.waiting ?? 0;
    o.metrics.inFlightCount = () => this.current?.admission.inFlight ?? 0;
  }

  /** The engine with what goes with it, made once per loaded engine. */
  private perEngine(): PerEngine {
    const engine = this.model.requireEngine();
    if (this.current?.engine === engine) return this.current;
    const manifest = this.model.manifest;
    const asked = this.batching ?? (manifest.batching ? { ...DEFAULT_BATCH, ...manifest.batching } : undefined);
    const settings = asked && asked.maxBatchSize > 1 ? asked : undefined;
    const { metrics } = this;
    const name = this.model.name;
    const batcher = settings
      ? new Batcher(
          settings,
          // The batch runs under the server's timeout from when it is sent; each member keeps its own deadline.
          (id, rows, opts, authorization) => {
            const now = Date.now();
            const ctx = new CallContext(this.log, name, id, now + this.timeoutMs, now + this.timeoutMs, opts?.parameters, authorization);
            return this.deadlines.race(ctx, engine.predict(rows, ctx, opts));
          },
          () => msError('MS_ERR_PREDICT_TIMEOUT', { ms: this.timeoutMs }),
          { batch: (size) => metrics.batchSize.labels(name).observe(size), waited: (s) => metrics.batchWait.labels(name).observe(s) },
        )
      : undefined;
    const bounds = admissionSettings(
      engine.metadata.capacity,
      this.admissionConfig,
      DEFAULTS.inProcessConcurrency,
      settings?.maxBatchSize ?? 1,
    );
    const admission = new Admission(name, bounds, (ms) => msError('MS_ERR_PREDICT_TIMEOUT', { ms: Math.max(0, Math.round(ms)) }), {
      rejected: (reason) => metrics.rejected.labels(name, reason).inc(),
    });
    const inputs = this.model.inputs;
    this.current = { engine, batcher, admission, inputs, check: inputs.length > 0 ? compileInputCheck(inputs) : undefined };
    return this.current;
  }

  /**
   * Sheds a request before its body is read, when admission would refuse it anyway: under overload a refusal then
   * costs the parsing of its headers only, leaving the CPUs to the requests that are served. Such a request gets no
   * inference record (it never reached the model); it is counted in the metrics.
   */
  refuseEarly(): ModelshipError | undefined {
    return this.current?.admission.refuseEarly();
  }

  /** 404 unless the name (and version, when given) is the served model's. */
  checkModel(name: string, version?: string): void {
    const model = this.model;
    if (name !== model.name) throw msError('MS_ERR_MODEL_NOT_FOUND', { name, served: model.name });
    if (version !== undefined && version !== model.version) {
      throw msError('MS_ERR_MODEL_VERSION_NOT_FOUND', { name, version, served: model.version ?? '(none)' });
    }
  }

  /** The model's OIP metadata (REST and gRPC). */
  metadata(): {
    name: string;
    versions: string[];
    platform: string;
    inputs: readonly TensorMetadata[];
    outputs: readonly TensorMetadata[];
    parameters?: { description: string };
  } {
    const model = this.model;
    return {
      name: model.name,
      versions: model.version ? [model.version] : [],
      platform: `modelship-${model.engine?.format ?? model.manifest.format ?? 'js'}`,
      inputs: model.inputs,
      outputs: model.outputs,
      ...(model.manifest.description ? { parameters: { description: model.manifest.description } } : {}),
    };
  }

  /** Server metadata (REST and gRPC). */
  serverMetadata(): { name: string; version: string; extensions: string[] } {
    return { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS };
  }

  /** The deadlines of a request arriving now: when its caller stops waiting, and when the server stops it. */
  private deadlinesOf(callerTimeout: unknown): { replyBy: number; killAt: number } {
    const now = Date.now();
    const caller = callerTimeoutMs(callerTimeout);
    const killAt = now + this.timeoutMs;
    return { replyBy: caller !== undefined && caller < this.timeoutMs ? now + caller : killAt, killAt };
  }

  /**
   * Runs one engine call under admission and the request's deadlines: the slot is held until the engine is done
   * with the call, even when the caller was answered 504 before.
   */
  private admitted<T>(
    pe: PerEngine,
    requestId: string,
    callerTimeout: unknown,
    run: (ctx: CallContext) => Promise<T>,
    parameters?: Record<string, unknown>,
    authorization?: string,
  ): Promise<T> {
    const { replyBy, killAt } = this.deadlinesOf(callerTimeout);
    const admission = pe.admission;
    const start = (): Promise<T> => {
      const t0 = performance.now();
      const ctx = new CallContext(this.log, this.model.name, requestId, replyBy, killAt, parameters, authorization);
      let work: Promise<T>;
      try {
        work = run(ctx);
      } catch (err) {
        admission.leave(performance.now() - t0);
        return Promise.reject(err);
      }
      return this.deadlines.race(ctx, work, () => admission.leave(performance.now() - t0));
    };
    // The common case takes its slot at once: no promise, no timer.
    const waiting = admission.enter(replyBy);
    return waiting ? waiting.then(start) : start();
  }

  /** One inference, from decoded request to encoded response. */
  async infer<R>(call: InferCall<R>): Promise<R> {
    const t0 = performance.now();
    const sampled = this.recorder.sample();
    let failure: unknown;
    let recorded: unknown;
    try {
      this.checkModel(call.model, call.version);
      const pe = this.perEngine();
      const rows = call.decode();
      pe.check?.(rows);
      const opts = call.opts;
      const p: Prediction = await this.admitted(
        pe,
        call.requestId,
        call.callerTimeout,
        (ctx) =>
          pe.batcher ? pe.batcher.submit(call.requestId, rows, opts, ctx.deadline, call.authorization) : pe.engine.predict(rows, ctx, opts),
        opts?.parameters,
        call.authorization,
      );
      if (p.signals) this.recorder.signals(p.signals, call.requestId);
      const encoded = call.encode(p.outputs);
      recorded = encoded.recorded;
      return encoded.response;
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      const ms = performance.now() - t0;
      this.metrics.observeRequest(this.model.name, call.protocol, failure === undefined ? 200 : statusOf(failure), ms / 1000);
      if (sampled) this.record(call, ms, failure, recorded);
    }
  }

  private record(call: InferCall<unknown>, latencyMs: number, failure: unknown, output: unknown): void {
    let input: unknown;
    try {
      input = call.recordInput();
    } catch {
      input = undefined; // what could not be decoded is in the error
    }
    const facts = { requestId: call.requestId, protocol: call.protocol, inferenceId: call.inferenceId, input, latencyMs };
    if (failure !== undefined || output === undefined) {
      this.recorder.inference({ ...facts, error: errorFacts(failure ?? msError('MS_ERR_SERVER_INTERNAL', { detail: 'no output' })) });
    } else this.recorder.inference({ ...facts, output });
  }

  /**
   * Feedback for an earlier inference (`id`: its request id). The feedback record is written first, so a
   * plugin failure (or overload) loses no ground truth; then the plugin's feedback() runs, admitted like a
   * prediction.
   */
  async feedback(
    protocol: 'v2' | 'v1',
    requestId: string,
    body: { id: string } & Record<string, unknown>,
    callerTimeout?: unknown,
    authorization?: string,
  ) {
    const { model, recorder } = this;
    const pe = this.perEngine();
    const engine = pe.engine;
    if (!engine.metadata.hasFeedback && recorder.topic === undefined) throw msError('MS_ERR_FEEDBACK_UNSUPPORTED', { name: model.name });
    const { id, ...truth } = body;
    const logged = recorder.feedback(protocol, id, requestId, truth);
    const response: { id: string; model: string; logged: boolean; result?: unknown } = { id, model: model.name, logged };
    if (engine.metadata.hasFeedback) {
      const r = await this.admitted(pe, requestId, callerTimeout, (ctx) => engine.feedback(body, ctx), undefined, authorization);
      recorder.signals(r.signals, id);
      if (r.value !== undefined) response.result = r.value;
    }
    return response;
  }

  /** A custom route's call, admitted like a prediction. */
  route(
    index: number,
    req: CustomRouteRequest,
    requestId: string,
    callerTimeout?: unknown,
    authorization?: string,
  ): Promise<CustomRouteResponse> {
    const pe = this.perEngine();
    return this.admitted(pe, requestId, callerTimeout, (ctx) => pe.engine.callRoute(index, req, ctx), undefined, authorization);
  }
}
