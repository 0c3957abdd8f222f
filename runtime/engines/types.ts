// The interface every engine (one per bundle format) offers the protocol layer.
import type { DependencyTarget, ModelHandle } from '../dependencies.ts';
import type { Logger } from 'pino';
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

/** Passed to predict(), predictBatch(), feedback() and custom route handlers. */
export interface RequestContext {
  requestId: string;
  modelName: string;
  /** Aborted when the request times out or the client goes away. */
  signal: AbortSignal;
  log: Logger;
  /** The request's OIP v2 `parameters`, when it had any. */
  parameters?: Record<string, unknown> | undefined;
  /** When the request times out (epoch ms); a worker skips what is already past it. */
  deadline?: number;
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

export interface Engine {
  readonly format: BundleFormat;
  /** The KServe v1 verbs it serves: always predict; Hopsworks bundles add classify and regress. */
  readonly verbs: readonly string[];
  /** The output a KServe v1 prediction is made of, instead of the whole output object (no-code sklearn: predict). */
  readonly v1Output?: string | undefined;
  /** From the plugin's metadata(), if any. */
  readonly pluginMetadata: PluginMetadata | undefined;
  readonly routes: readonly CustomRouteSpec[];
  readonly hasFeedback: boolean;
  /** One output object per input row, validated. */
  predict(rows: Record<string, unknown>[], ctx: RequestContext, opts?: PredictOptions): Promise<Prediction>;
  feedback(record: Record<string, unknown>, ctx: RequestContext): Promise<FeedbackResult>;
  callRoute(index: number, req: CustomRouteRequest, ctx: RequestContext): Promise<CustomRouteResponse>;
  close(): Promise<void>;
}
