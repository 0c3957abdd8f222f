// Running one prediction for a protocol handler: the per-request timeout (504), the in-flight gauge and
// the request context handed to the plugin.
import type { Logger } from 'pino';
import type { Outputs } from '../engines/outputs.ts';
import type { Engine, RequestContext } from '../engines/types.ts';
import { msError } from '../errors.ts';
import type { ServedModel } from '../model.ts';
import type { RuntimeMetrics } from '../observability/metrics.ts';

export interface InferDeps {
  model: ServedModel;
  metrics: RuntimeMetrics;
  log: Logger;
  requestTimeoutMs: number;
}

/** A request context whose logger child is made only if the plugin asks for it. */
export function requestContext(deps: InferDeps, requestId: string, signal: AbortSignal): RequestContext {
  let child: Logger | undefined;
  return {
    requestId,
    modelName: deps.model.name,
    signal,
    get log() {
      child ??= deps.log.child({ requestId });
      return child;
    },
  };
}

export async function withDeadline<T>(
  deps: InferDeps,
  requestId: string,
  call: (engine: Engine, ctx: RequestContext) => Promise<T>,
): Promise<T> {
  const engine = deps.model.requireEngine();
  const ac = new AbortController();
  const ms = deps.requestTimeoutMs;
  const gauge = deps.metrics.inFlight.labels(deps.model.name);
  gauge.inc();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => {
        const err = msError('MS_ERR_PREDICT_TIMEOUT', { ms });
        ac.abort(err);
        reject(err);
      }, ms);
      call(engine, requestContext(deps, requestId, ac.signal)).then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
    gauge.dec();
  }
}

export function predict(deps: InferDeps, requestId: string, rows: Record<string, unknown>[]): Promise<Outputs[]> {
  return withDeadline(deps, requestId, (engine, ctx) => engine.predict(rows, ctx));
}
