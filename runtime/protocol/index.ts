// The inference routes (OIP v2, KServe v1, custom routes) as one encapsulated fastify plugin: its hooks
// (request metrics, the inference record after the response, the request log line) apply to its routes
// only, not to health probes or /metrics.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DataPlane, Inference } from '../dataplane.ts';
import { registerCustom } from './custom.ts';
import { registerV1 } from './v1.ts';
import { registerV2 } from './v2.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The protocol label of a measured route (v2, v1, custom). */
    protocol?: string;
  }
  interface FastifyRequest {
    /** Set by an infer handler when it starts: what the inference record is made of. */
    inference: Inference | null;
    /** What the request failed with, if it did. */
    inferenceError: unknown;
  }
}

export function inferenceRoutes(plane: DataPlane, log: Logger) {
  const debug = log.isLevelEnabled('debug');
  const { metrics, model } = plane;
  return async function routes(app: FastifyInstance): Promise<void> {
    app.decorateRequest('inference', null);
    app.decorateRequest('inferenceError', null);
    app.addHook('onError', (req, _reply, err, done) => {
      req.inferenceError = err;
      done();
    });
    app.addHook('onResponse', (req, reply, done) => {
      const protocol = reply.routeOptions.config.protocol;
      if (protocol) metrics.observeRequest(model.name, protocol, reply.statusCode, reply.elapsedTime / 1000);
      if (req.inference) plane.finish(req.inference, reply.elapsedTime, req.inferenceError ?? undefined);
      if (debug && protocol) {
        log.debug({ requestId: req.id, method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
      }
      done();
    });
    registerV2(app, plane);
    registerV1(app, plane);
    registerCustom(app, plane);
  };
}
