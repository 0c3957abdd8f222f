// Custom endpoints a plugin registers (JS routes(register), ml-deploy endpoints(app)): served below
// /v2/models/{name}/custom/. The plugin is loaded after the server starts listening, so one wildcard route
// dispatches to them, through a find-my-way router (fastify's own) made once per loaded engine. A call is admitted
// and bounded like a prediction (DataPlane.route).
import type { FastifyInstance } from 'fastify';
import FindMyWay from 'find-my-way';
import { callerAuthorization } from '../auth/gate.ts';
import { FORWARDED_AUTH_HEADER, TIMEOUT_HEADER } from '../contract.ts';
import type { DataPlane } from '../dataplane.ts';
import type { CustomRouteSpec } from '../engines/types.ts';
import { msError } from '../errors.ts';

type Found = { index: number; params: Record<string, string> } | 'method' | undefined;

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** A router over a plugin's routes: the route a request takes, 'method' when only the method differs. */
export function routeFinder(routes: readonly CustomRouteSpec[]): (method: string, path: string) => Found {
  const router = FindMyWay({ ignoreTrailingSlash: true });
  routes.forEach((route, index) => {
    // The first registration of a method and path wins, as the plugin listed them.
    if (!router.hasRoute(route.method, route.path)) router.on(route.method, route.path, () => index);
  });
  return (method, path) => {
    const hit = router.find(method as (typeof METHODS)[number], path);
    if (hit) return { index: (hit.handler as () => number)(), params: hit.params as Record<string, string> };
    return METHODS.some((m) => m !== method && router.find(m, path)) ? 'method' : undefined;
  };
}

export function registerCustom(app: FastifyInstance, plane: DataPlane): void {
  const finders = new WeakMap<readonly CustomRouteSpec[], ReturnType<typeof routeFinder>>();
  // `custom/*` and `custom` alone: a plugin's route `/` (a Ray deployment's default) is the bare prefix, which the
  // wildcard does not match once the router has dropped the trailing slash.
  for (const url of ['/v2/models/:name/custom/*', '/v2/models/:name/custom']) {
    app.route({
      method: [...METHODS],
      url,
      config: { protocol: 'custom' },
      handler: async (req, reply) => {
        const { name, '*': rest } = req.params as { name: string; '*': string };
        plane.checkModel(name);
        const routes = plane.model.requireEngine().metadata.routes;
        let find = finders.get(routes);
        if (!find) {
          find = routeFinder(routes);
          finders.set(routes, find);
        }
        const path = `/${rest ?? ''}`;
        const found = find(req.method, path);
        if (found === 'method') throw msError('MS_ERR_HTTP_METHOD_NOT_ALLOWED', { method: req.method, url: req.url });
        if (!found) throw msError('MS_ERR_HTTP_NOT_FOUND', { method: req.method, url: req.url });
        const res = await plane.route(
          found.index,
          {
            method: req.method,
            path,
            params: found.params,
            query: req.query as Record<string, unknown>,
            headers: req.headers,
            body: req.body,
          },
          req.id,
          req.headers[TIMEOUT_HEADER],
          callerAuthorization(req.headers.authorization, req.headers[FORWARDED_AUTH_HEADER]),
        );
        reply.code(res.status ?? 200);
        return res.body ?? null;
      },
    });
  }
}
