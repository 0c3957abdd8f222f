// build(opts) → the runtime's fastify instance, not listening. Tested with inject().
import Fastify, { type FastifyError, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { DEFAULTS, PROBES } from './contract.ts';
import type { BatchingSettings } from './batching.ts';
import { type AuthGate, FORWARDED_AUTH_HEADER } from './auth/gate.ts';
import { type AdmissionConfig, DataPlane, requestIdFrom } from './dataplane.ts';
import { isModelshipError, type ModelshipError, msError } from './errors.ts';
import type { Recorder } from './inference-log/recorder.ts';
import type { ServedModel } from './model.ts';
import type { RuntimeMetrics } from './observability/metrics.ts';
import { registerBodyParsers } from './protocol/body.ts';
import { registerBatch } from './protocol/batch.ts';
import { inferenceRoutes } from './protocol/index.ts';
import { describeSchemaErrors } from './schema-errors.ts';

export interface BuildOptions {
  model: ServedModel;
  metrics: RuntimeMetrics;
  log: Logger;
  requestTimeoutMs?: number;
  bodyLimitBytes?: number;
  /** Inference records, feedback and plugin signals (`localRecorder()`: plugin metrics only, no Kafka). */
  recorder: Recorder;
  /** Adaptive batching from the ModelServing; unset: the manifest's. */
  batching?: BatchingSettings | undefined;
  /** Admission bounds; unset: from the engine. */
  admission?: Partial<AdmissionConfig> | undefined;
  /** spec.auth: inference, feedback, custom routes and /metrics here need a caller it accepts. */
  auth?: AuthGate | undefined;
  /** A BatchPrediction's model sidecar: the batch protocol (runtime/protocol/batch.ts) beside the others. */
  batch?: boolean | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The data plane under the REST routes, for the other protocols (gRPC) to share. */
    plane: DataPlane;
  }
}

function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  return requestIdFrom(req.headers['x-request-id']);
}

/** Maps any error to a ModelshipError (status + stable code). */
function toModelshipError(err: FastifyError, bodyLimit: number): ModelshipError {
  if (isModelshipError(err)) return err;
  if (err.validation) {
    const where = err.validationContext ?? 'body';
    const errors = err.validation.map((e) => ({
      keyword: e.keyword,
      instancePath: `/${where}${e.instancePath}`,
      schemaPath: e.schemaPath,
      params: e.params as Record<string, unknown>,
      message: e.message ?? 'is invalid',
    }));
    return msError('MS_ERR_REQUEST_INVALID', { detail: describeSchemaErrors(errors) });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return msError('MS_ERR_REQUEST_TOO_LARGE', { limit: bodyLimit });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return msError('MS_ERR_REQUEST_CONTENT_TYPE', { type: err.message.replace(/^Unsupported Media Type:?\s*/, '') || 'unknown' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return msError('MS_ERR_REQUEST_BAD_JSON', { detail: 'the body is empty' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return msError('MS_ERR_REQUEST_BAD_JSON', { detail: err.message });
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.name + err.message))) {
    return msError('MS_ERR_REQUEST_BAD_JSON', { detail: err.message });
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return msError('MS_ERR_REQUEST_INVALID', { detail: err.message });
  }
  return msError('MS_ERR_SERVER_INTERNAL', { detail: err.message }, err);
}

/** The readiness answer: ready, or why not. */
export function readiness(model: ServedModel): { ready: boolean; status?: string; reason?: string } {
  if (model.ready) return { ready: true };
  return { ready: false, status: model.status, reason: model.reason || 'no worker is running; restarting' };
}

export function build(opts: BuildOptions): FastifyInstance {
  const { model, metrics, log } = opts;
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULTS.bodyLimitBytes;
  const app = Fastify({
    loggerInstance: log,
    // One line per request is logged by our own hook at debug; no per-request child logger on the hot path.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    requestIdHeader: false,
    genReqId: requestId,
    // During a graceful shutdown requests that still arrive are served, not refused with 503.
    return503OnClosing: false,
    // Nor are idle keep-alive connections cut when close() begins: a client may be writing its next request
    // on one at that moment (ECONNRESET). The server's drain closes them once they have been idle a while.
    forceCloseConnections: false,
    routerOptions: { ignoreTrailingSlash: true },
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  }) as unknown as FastifyInstance;

  registerBodyParsers(app);

  const plane = new DataPlane({
    model,
    metrics,
    log,
    recorder: opts.recorder,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    batching: opts.batching,
    admission: opts.admission,
  });
  const debug = log.isLevelEnabled('debug');
  metrics.setModel(model.name);

  // Headers are stamped when the request arrives, so every response (errors included) carries them.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    // While draining, close each connection after its response, so keep-alive clients move on and the
    // server can finish closing.
    if (model.status === 'draining') reply.header('connection', 'close');
    done();
  });
  app.setErrorHandler((error: FastifyError, req, reply) => {
    const err = toModelshipError(error, bodyLimit);
    if (err.retryAfterSeconds !== undefined) reply.header('retry-after', err.retryAfterSeconds);
    if (err.code === 'MS_ERR_AUTH_UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
    if (err.statusCode >= 500 && err.code !== 'MS_ERR_MODEL_OVERLOADED' && err.code !== 'MS_ERR_AUTH_UNAVAILABLE') {
      log.error({ requestId: req.id, code: err.code, err: error, url: req.url }, err.message);
    } else if (debug) {
      log.debug({ requestId: req.id, code: err.code, url: req.url }, err.message);
    }
    reply.code(err.statusCode).send(err.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(msError('MS_ERR_HTTP_NOT_FOUND', { method: req.method, url: req.url }).toJSON());
  });

  // OIP's health endpoints on the inference port too (clients ask them there); the kubelet asks the health
  // listener (runtime/health.ts), which answers the same.
  app.get(PROBES.live, () => ({ live: true }));
  app.get(PROBES.ready, (_req, reply) => {
    const r = readiness(model);
    if (!r.ready) reply.code(503);
    return r;
  });
  const { auth } = opts;
  const authenticate = auth
    ? async (req: { headers: Record<string, string | string[] | undefined> }) =>
        auth.check(req.headers.authorization, req.headers[FORWARDED_AUTH_HEADER])
    : undefined;
  app.get('/metrics', { ...(authenticate ? { onRequest: authenticate } : {}) }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.register(inferenceRoutes(plane, log, authenticate));
  if (opts.batch) registerBatch(app, plane);
  app.decorate('plane', plane);
  return app;
}
