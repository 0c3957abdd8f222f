// The interface every engine (one per bundle format) offers the data plane: made by loading a bundle (each
// engine's create function), then predict (with feedback and custom routes, the plugin's other calls), its
// metadata, and close. Nothing here knows a protocol.
import type { Logger } from 'pino';
import type { DependencyTarget } from '../contract.ts';
import type { BundleFormat, TensorMetadata } from '../bundle/manifest.ts';
import type { Outputs } from './outputs.ts';
import type { Signals } from './signals.ts';

/** predict()'s validated outputs (one per input row) and the metrics and events the plugin returned. */
export interface Prediction {
  outputs: Outputs[];
  signals?: Signals | undefined;
}

/** What feedback() returned (without `$metrics` / `$events`) and the signals it carried. */
export interface FeedbackResult {
  value: unknown;
  signals?: Signals | undefined;
}

/** What every engine is started with: the unpacked bundle, its entrypoint, and how the model is named. */
export interface BundleEngineOptions {
  bundleDir: string;
  entrypoint: string;
  modelName: string;
  modelVersion: string | undefined;
  /** `parameters` from modelship.yaml. */
  parameters: Record<string, unknown>;
  /** spec.dependencies, resolved: name → the Service to call. */
  dependencies?: Record<string, DependencyTarget> | undefined;
  initTimeoutMs: number;
  workers: number;
  log: Logger;
}

/** Passed to the plugin's init(). */
export interface InitContext {
  modelName: string;
  modelVersion: string | undefined;
  /** `parameters` from modelship.yaml. */
  parameters: Record<string, unknown>;
  log: Logger;
}

/** A handle to another ModelServing of spec.dependencies (runtime/dependencies.ts makes them). */
export interface ModelHandle {
  /** KServe v1: one instance (an object) → its prediction; an array of instances → the array of predictions. */
  predict(input: unknown): Promise<unknown>;
  /** OIP v2: a whole inference request (`inputs`, optional `outputs`, `parameters`) → the response. */
  infer(request: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Passed to predict(), predictBatch(), feedback() and custom route handlers. */
export interface RequestContext {
  requestId: string;
  modelName: string;
  /**
   * Aborted when the server's own request timeout passes: the call should stop (an engine that cannot stop it
   * otherwise kills its worker, within a budget). A caller's shorter deadline never aborts it.
   */
  signal: AbortSignal;
  log: Logger;
  /** The request's OIP v2 `parameters`, when it had any. */
  parameters?: Record<string, unknown> | undefined;
  /** When the caller stops waiting for the answer (epoch ms); a worker skips a call that is already past it. */
  deadline?: number;
  /** The caller's credentials (an Authorization header value), passed on to the dependencies it calls. */
  authorization?: string | undefined;
  /** Handles to the ModelServings of spec.dependencies (`ctx.models.svm.predict(input)`). */
  models?: Record<string, ModelHandle>;
}

/** What a plugin's metadata() may return; merged over the manifest. */
export interface PluginMetadata {
  inputs?: TensorMetadata[];
  outputs?: TensorMetadata[];
  [key: string]: unknown;
}

export interface CustomRouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Path below /v2/models/{name}/custom, starting with '/'. */
  path: string;
}

export interface CustomRouteRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A custom route's answer: a JSON body, or { status, body } to choose the status. */
export interface CustomRouteResponse {
  status?: number;
  body?: unknown;
}

/** How one predict call is asked for. */
export interface PredictOptions {
  /** The KServe v1 verb: predict (default), or one of the engine's `verbs` (Hopsworks' classify, regress). */
  method?: string;
  /** The outputs the client asked for, so an engine may skip the others (a hint: all may be returned). */
  outputs?: readonly string[];
  /** The request's `parameters` (OIP v2), for the plugin's context. */
  parameters?: Record<string, unknown>;
}

/** What an engine knows of its model once loaded. */
export interface EngineMetadata {
  /** From the plugin's metadata() (or the graph): merged over the manifest's. */
  inputs?: readonly TensorMetadata[] | undefined;
  outputs?: readonly TensorMetadata[] | undefined;
  /** Prediction methods: predict, and Hopsworks' classify and regress where the bundle has them (KServe v1 verbs). */
  methods: readonly string[];
  /** The output a prediction stands for, where the model has one natural answer (a scikit-learn estimator's). */
  primaryOutput?: string | undefined;
  routes: readonly CustomRouteSpec[];
  hasFeedback: boolean;
  /**
   * Calls it runs at once without one waiting for another (worker processes × their pipeline, threads); undefined
   * when calls run in the server's own thread (admission control then uses its configured default).
   */
  capacity: number | undefined;
}

export interface Engine {
  readonly format: BundleFormat;
  readonly metadata: EngineMetadata;
  /** False while it cannot take a call (every worker down and restarting): the model is not ready then. */
  serving(): boolean;
  /** One output object per input row, validated. */
  predict(rows: Record<string, unknown>[], ctx: RequestContext, opts?: PredictOptions): Promise<Prediction>;
  feedback(record: Record<string, unknown>, ctx: RequestContext): Promise<FeedbackResult>;
  callRoute(index: number, req: CustomRouteRequest, ctx: RequestContext): Promise<CustomRouteResponse>;
  close(): Promise<void>;
}
