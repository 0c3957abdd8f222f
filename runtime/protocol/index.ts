// The inference routes (OIP v2, KServe v1, custom routes) as one encapsulated fastify plugin: its hooks (the
// metrics of requests the data plane did not measure itself: feedback, custom routes, and requests refused before
// they reached it; the request log line) apply to its routes only, not to health probes or /metrics.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DataPlane } from '../dataplane.ts';
import { registerCustom } from './custom.ts';
import { registerV1 } from './v1.ts';
import { registerV2 } from './v2.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The protocol label of a measured route (v2, v1, custom). */
    protocol?: string;
    /** A feedback route: never shed before its body is read (its ground truth is recorded whatever the load). */
    feedback?: boolean;
  }
  interface FastifyRequest {
    /** Set by an infer handler as it hands the request to DataPlane.infer, which measures it. */
    observed: boolean;
  }
}

/** Whether a request may be shed before its body is read: not feedback (v2's route, v1's `:feedback` verb). */
function shed(req: { routeOptions: { config: { feedback?: boolean } }; params: unknown }): boolean {
  if (req.routeOptions.config.feedback) return false;
  const target = (req.params as { target?: string }).target;
  return !(typeof target === 'string' && target.endsWith(':feedback'));
}

export function inferenceRoutes(
  plane: DataPlane,
  log: Logger,
  authenticate?: (req: { headers: Record<string, string | string[] | undefined> }) => Promise<void>,
) {
  const debug = log.isLevelEnabled('debug');
  const { metrics, model } = plane;
  return async function routes(app: FastifyInstance): Promise<void> {
    app.decorateRequest('observed', false);
    // Inference, feedback and custom routes (the measured ones); metadata and readiness stay open. Before the body
    // is read: a caller that may not use the model, and a request admission would refuse anyway, cost no parsing.
    if (authenticate) {
      app.addHook('onRequest', async (req) => {
        if (!req.routeOptions.config.protocol) return;
        await authenticate(req);
        const refused = shed(req) ? plane.refuseEarly() : undefined;
        if (refused) throw refused;
      });
    } else {
      // Without authentication, a plain callback: no promise per request.
      app.addHook('onRequest', (req, _reply, done) => {
        done(req.routeOptions.config.protocol && shed(req) ? plane.refuseEarly() : undefined);
      });
    }
    app.addHook('onResponse', (req, reply, done) => {
      const protocol = reply.routeOptions.config.protocol;
      if (protocol && !req.observed) metrics.observeRequest(model.name, protocol, reply.statusCode, reply.elapsedTime / 1000);
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
