// Custom endpoints a plugin registers (JS routes(register), ml-deploy endpoints(app)): served below
// /v2/models/{name}/custom/. The plugin is loaded after the server starts listening, so one wildcard
// route dispatches to them.
import type { FastifyInstance } from 'fastify';
import type { DataPlane } from '../dataplane.ts';
import type { CustomRouteSpec } from '../engines/types.ts';
import { msError } from '../errors.ts';

/** Matches a request path against a route path with `:param` segments. Pure. */
export function matchRoute(pattern: string, path: string): Record<string, string> | undefined {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i] as string;
    const val = s[i] as string;
    if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(val);
    else if (seg !== val) return undefined;
  }
  return params;
}

export function findRoute(routes: readonly CustomRouteSpec[], method: string, path: string) {
  let pathMatched = false;
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i] as CustomRouteSpec;
    const params = matchRoute(route.path, path);
    if (!params) continue;
    pathMatched = true;
    if (route.method === method) return { index: i, params };
  }
  return pathMatched ? 'method' : undefined;
}

export function registerCustom(app: FastifyInstance, plane: DataPlane): void {
  app.route({
    method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
    url: '/v2/models/:name/custom/*',
    config: { protocol: 'custom' },
    handler: async (req, reply) => {
      const { name, '*': rest } = req.params as { name: string; '*': string };
      plane.checkModel(name);
      const engine = plane.model.requireEngine();
      const path = `/${rest ?? ''}`;
      const found = findRoute(engine.routes, req.method, path);
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
      );
      reply.code(res.status ?? 200);
      return res.body ?? null;
    },
  });
}
