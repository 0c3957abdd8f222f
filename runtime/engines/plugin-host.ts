// Loads a JS plugin (ESM or CommonJS), checks its exports against the contract, runs init() under a time
// limit and calls into it. Used in-process by the JS engine and inside each worker of the worker pool.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, isModelshipError, msError } from '../errors.ts';
import { type Outputs, validateOutputs } from './outputs.ts';
import { hasSignals, type Signals, takeSignals } from './signals.ts';
import type {
  CustomRouteRequest,
  CustomRouteResponse,
  CustomRouteSpec,
  FeedbackResult,
  InitContext,
  PluginMetadata,
  Prediction,
  RequestContext,
} from './types.ts';

type Fn = (...args: unknown[]) => unknown;

interface PluginModule {
  init?: Fn;
  predict?: Fn;
  predictBatch?: Fn;
  feedback?: Fn;
  routes?: Fn;
  metadata?: Fn;
}

const OPTIONAL = ['init', 'predict', 'predictBatch', 'feedback', 'routes', 'metadata'] as const;
const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);

type RouteHandler = (req: CustomRouteRequest, ctx: RequestContext) => unknown;

export class PluginHost {
  readonly entrypoint: string;
  readonly routes: CustomRouteSpec[] = [];
  pluginMetadata: PluginMetadata | undefined;
  private readonly plugin: PluginModule;
  private readonly handlers: RouteHandler[] = [];

  private constructor(entrypoint: string, plugin: PluginModule) {
    this.entrypoint = entrypoint;
    this.plugin = plugin;
  }

  /** Imports the plugin and checks its exports. Does not call init(). */
  static async load(bundleDir: string, entrypoint: string): Promise<PluginHost> {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(join(bundleDir, entrypoint)).href)) as Record<string, unknown>;
    } catch (err) {
      throw msError('MS_ERR_PLUGIN_LOAD', { entrypoint, detail: describe(err) }, err);
    }
    // CommonJS plugins arrive as `default` (module.exports); ESM ones as named exports.
    const candidate =
      typeof mod.predict === 'function' || typeof mod.predictBatch === 'function' ? mod : ((mod.default ?? mod) as Record<string, unknown>);
    for (const name of OPTIONAL) {
      const v = candidate[name];
      if (v !== undefined && typeof v !== 'function') {
        throw msError('MS_ERR_PLUGIN_EXPORTS', { entrypoint, detail: `exports ${name} as ${typeof v}; expected a function` });
      }
    }
    if (typeof candidate.predict !== 'function' && typeof candidate.predictBatch !== 'function') {
      throw msError('MS_ERR_PLUGIN_EXPORTS', {
        entrypoint,
        detail: `exports neither predict(input, ctx) nor predictBatch(inputs, ctx) (found: ${Object.keys(candidate).join(', ') || 'nothing'})`,
      });
    }
    return new PluginHost(entrypoint, candidate as PluginModule);
  }

  /** Runs init() (bounded by `timeoutMs`), then collects metadata() and routes(). */
  async init(bundleDir: string, ctx: InitContext, timeoutMs: number): Promise<void> {
    if (this.plugin.init) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(msError('MS_ERR_PLUGIN_INIT_TIMEOUT', { seconds: Math.round(timeoutMs / 100) / 10 })), timeoutMs);
      });
      try {
        await Promise.race([Promise.resolve().then(() => this.plugin.init?.(bundleDir, ctx)), timeout]);
      } catch (err) {
        if (isModelshipError(err)) throw err;
        throw msError('MS_ERR_PLUGIN_INIT_FAILED', { detail: describe(err) }, err);
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.plugin.metadata) {
      try {
        const md = await this.plugin.metadata();
        if (md !== undefined && (md === null || typeof md !== 'object')) throw new Error('metadata() must return an object');
        this.pluginMetadata = md as PluginMetadata | undefined;
      } catch (err) {
        throw msError('MS_ERR_PLUGIN_INIT_FAILED', { detail: `metadata(): ${describe(err)}` }, err);
      }
    }
    if (this.plugin.routes) {
      const register = (method: string, path: string, handler: RouteHandler) => {
        const m = String(method).toUpperCase();
        if (!METHODS.has(m)) throw msError('MS_ERR_ROUTE_INVALID', { detail: `method ${method} (use GET, POST, PUT, DELETE or PATCH)` });
        if (typeof path !== 'string' || !path.startsWith('/') || path.includes('..') || path.includes('*')) {
          throw msError('MS_ERR_ROUTE_INVALID', { detail: `path ${JSON.stringify(path)} must start with / and contain no .. or *` });
        }
        if (typeof handler !== 'function') throw msError('MS_ERR_ROUTE_INVALID', { detail: `handler for ${m} ${path} is not a function` });
        this.routes.push({ method: m as CustomRouteSpec['method'], path });
        this.handlers.push(handler);
      };
      try {
        await this.plugin.routes(register);
      } catch (err) {
        if (isModelshipError(err)) throw err;
        throw msError('MS_ERR_ROUTE_INVALID', { detail: describe(err) }, err);
      }
    }
  }

  get hasFeedback(): boolean {
    return typeof this.plugin.feedback === 'function';
  }

  async predict(rows: Record<string, unknown>[], ctx: RequestContext): Promise<Prediction> {
    let results: unknown[];
    try {
      if (this.plugin.predictBatch) {
        const r = await this.plugin.predictBatch(rows, ctx);
        if (!Array.isArray(r) || r.length !== rows.length) {
          throw msError('MS_ERR_OUTPUT_INVALID', {
            detail: `predictBatch returned ${Array.isArray(r) ? `${r.length} results` : typeof r} for ${rows.length} inputs; expected an array of ${rows.length}`,
          });
        }
        results = r;
      } else if (rows.length === 1) {
        results = [await (this.plugin.predict as Fn)(rows[0], ctx)];
      } else {
        const predict = this.plugin.predict as Fn;
        results = await Promise.all(rows.map((row) => predict(row, ctx)));
      }
    } catch (err) {
      if (isModelshipError(err)) throw err;
      throw msError('MS_ERR_PREDICT_FAILED', { detail: describe(err) }, err);
    }
    const signals: Signals = { metrics: [], events: [] };
    for (let i = 0; i < results.length; i++) {
      results[i] = takeSignals(results[i], signals);
      validateOutputs(results[i], results.length > 1 ? i : undefined);
    }
    return hasSignals(signals) ? { outputs: results as Outputs[], signals } : { outputs: results as Outputs[] };
  }

  async feedback(record: Record<string, unknown>, ctx: RequestContext): Promise<FeedbackResult> {
    if (!this.plugin.feedback) return { value: undefined };
    let value: unknown;
    try {
      value = await this.plugin.feedback(record, ctx);
    } catch (err) {
      throw msError('MS_ERR_FEEDBACK_FAILED', { detail: describe(err) }, err);
    }
    const signals: Signals = { metrics: [], events: [] };
    value = takeSignals(value, signals);
    return hasSignals(signals) ? { value, signals } : { value };
  }

  async callRoute(index: number, req: CustomRouteRequest, ctx: RequestContext): Promise<CustomRouteResponse> {
    const handler = this.handlers[index];
    const spec = this.routes[index];
    if (!handler || !spec) throw msError('MS_ERR_SERVER_INTERNAL', { detail: `no custom route #${index}` });
    try {
      const r = await handler(req, ctx);
      if (r && typeof r === 'object' && ('status' in r || 'body' in r) && Object.keys(r).every((k) => k === 'status' || k === 'body')) {
        return r as CustomRouteResponse;
      }
      return { body: r };
    } catch (err) {
      throw msError('MS_ERR_ROUTE_FAILED', { route: `${spec.method} ${spec.path}`, detail: describe(err) }, err);
    }
  }
}
