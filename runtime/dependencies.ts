// Handles to other ModelServings (spec.dependencies), for composing models: `ctx.models.svm.predict(input)`
// in JS plugins. Each dependency gets a pool of keep-alive connections to its Service (undici). A call carries
// the caller's request id (so the inference records of a whole call tree join on it), the caller's remaining
// time (TIMEOUT_HEADER) and the caller's credentials (where the callee requires authentication, the caller's
// identity is the one checked); the callee's failure comes back as a coded error naming the dependency, with
// the callee's own code and message in it.
import { Pool } from 'undici';
import { type DependencyTarget, TIMEOUT_HEADER } from './contract.ts';
import type { ModelHandle, RequestContext } from './engines/types.ts';
import { msError } from './errors.ts';

export type { DependencyTarget, ModelHandle };

export interface DependencyMetrics {
  observe(dependency: string, outcome: string, seconds: number): void;
}

/** Parses MODELSHIP_DEPENDENCIES (`{"svm": {"url": …, "model": …, "modelServing": …}}`). Pure. */
export function parseDependencies(text: string | undefined): Record<string, DependencyTarget> {
  if (!text) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: 'MODELSHIP_DEPENDENCIES is not JSON' });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: 'MODELSHIP_DEPENDENCIES must be an object of name → {url, model}' });
  }
  const out: Record<string, DependencyTarget> = {};
  for (const [name, t] of Object.entries(doc as Record<string, unknown>)) {
    const target = t as Partial<DependencyTarget> | null;
    if (!target || typeof target.url !== 'string' || !/^http:\/\//.test(target.url) || typeof target.model !== 'string') {
      throw msError('MS_ERR_CONFIG_INVALID', { detail: `MODELSHIP_DEPENDENCIES: ${name} needs an http:// url and a model name` });
    }
    out[name] = { url: target.url.replace(/\/+$/, ''), model: target.model, modelServing: target.modelServing ?? target.model };
  }
  return out;
}

/** Who calls a dependency: the request the call is part of. */
interface Caller {
  requestId: string;
  deadline: number;
  authorization: string | undefined;
}

interface Answer {
  status: number;
  body: string;
}

/** The callee's `{"error", "code"}`, when its body is one. Pure. */
function calleeError(body: string): { code?: string; error?: string } {
  try {
    const v = JSON.parse(body) as { code?: unknown; error?: unknown };
    return { ...(typeof v.code === 'string' ? { code: v.code } : {}), ...(typeof v.error === 'string' ? { error: v.error } : {}) };
  } catch {
    return { error: body.slice(0, 200) };
  }
}

export class Dependencies {
  readonly names: string[];
  private readonly pools = new Map<string, Pool>();
  private readonly targets: Record<string, DependencyTarget>;
  private readonly metrics: DependencyMetrics | undefined;

  constructor(targets: Record<string, DependencyTarget>, metrics?: DependencyMetrics) {
    this.targets = targets;
    this.metrics = metrics;
    this.names = Object.keys(targets).sort();
    for (const name of this.names) this.pools.set(name, new Pool(new URL(targets[name]?.url as string).origin, { connections: 64 }));
  }

  /**
   * The handles a plugin call gets: bound to its request id, deadline and credentials. An unknown name is an
   * error that lists the known ones (a typo must not read as `undefined is not a function`).
   */
  handles(requestId: string, deadline: number, authorization?: string): Record<string, ModelHandle> {
    const call = { requestId, deadline, authorization };
    const made = new Map<string, ModelHandle>();
    const names = this.names;
    return new Proxy({} as Record<string, ModelHandle>, {
      get: (_, prop) => {
        if (typeof prop !== 'string' || prop === 'then') return undefined;
        const target = this.targets[prop];
        if (!target) {
          throw msError('MS_ERR_DEPENDENCY_UNKNOWN', {
            name: prop,
            known: names.length ? names.join(', ') : '(none: spec.dependencies is empty)',
          });
        }
        let h = made.get(prop);
        if (!h) {
          h = {
            predict: async (input) => {
              const instances = Array.isArray(input) ? input : [input];
              const r = (await this.call(prop, target, `/v1/models/${encodeURIComponent(target.model)}:predict`, { instances }, call)) as {
                predictions?: unknown[];
              };
              if (!Array.isArray(r.predictions)) {
                throw msError('MS_ERR_DEPENDENCY_FAILED', {
                  name: prop,
                  ms: target.modelServing,
                  detail: 'its answer has no predictions array',
                });
              }
              return Array.isArray(input) ? r.predictions : r.predictions[0];
            },
            infer: (req) => this.call(prop, target, `/v2/models/${encodeURIComponent(target.model)}/infer`, req, call),
          };
          made.set(prop, h);
        }
        return h;
      },
      has: (_, prop) => typeof prop === 'string' && prop in this.targets,
      ownKeys: () => names,
      getOwnPropertyDescriptor: (_, prop) =>
        typeof prop === 'string' && prop in this.targets ? { enumerable: true, configurable: true } : undefined,
    });
  }

  private async call(
    name: string,
    target: DependencyTarget,
    path: string,
    body: unknown,
    caller: Caller,
  ): Promise<Record<string, unknown>> {
    const deadline = caller.deadline;
    const started = performance.now();
    const remaining = Math.floor(deadline - Date.now());
    let outcome = 'error';
    try {
      if (remaining <= 0) {
        outcome = 'timeout';
        throw msError('MS_ERR_DEPENDENCY_TIMEOUT', { name, ms: target.modelServing, timeout: 0 });
      }
      let answer: Answer;
      try {
        answer = await this.postRetryingRefused(
          name,
          `${new URL(target.url).pathname.replace(/\/$/, '')}${path}`,
          JSON.stringify(body),
          caller,
        );
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') {
          outcome = 'timeout';
          throw msError('MS_ERR_DEPENDENCY_TIMEOUT', { name, ms: target.modelServing, timeout: remaining });
        }
        outcome = 'unavailable';
        throw msError('MS_ERR_DEPENDENCY_UNAVAILABLE', {
          name,
          ms: target.modelServing,
          detail: e.code ? `${e.code} (${e.message})` : e.message,
        });
      }
      if (answer.status === 200) {
        outcome = 'ok';
        return JSON.parse(answer.body) as Record<string, unknown>;
      }
      const { code, error } = calleeError(answer.body);
      const detail = `${code ? `${code}: ` : ''}${error ?? `HTTP ${answer.status}`}`;
      if (answer.status === 503) {
        outcome = 'unavailable';
        throw msError('MS_ERR_DEPENDENCY_UNAVAILABLE', { name, ms: target.modelServing, detail });
      }
      if (answer.status === 504) {
        outcome = 'timeout';
        throw msError('MS_ERR_DEPENDENCY_TIMEOUT', { name, ms: target.modelServing, timeout: remaining });
      }
      if (answer.status >= 400 && answer.status < 500) {
        outcome = 'rejected';
        throw msError('MS_ERR_DEPENDENCY_REJECTED', { name, ms: target.modelServing, detail });
      }
      outcome = 'failed';
      throw msError('MS_ERR_DEPENDENCY_FAILED', { name, ms: target.modelServing, detail });
    } finally {
      this.metrics?.observe(name, outcome, (performance.now() - started) / 1000);
    }
  }

  /**
   * A refused connection never carried the request, so it is tried again (a Service between two endpoints in a
   * rollout, or one kube-proxy has not programmed yet): after 50, 100 and 200 ms, within the deadline.
   */
  private async postRetryingRefused(name: string, path: string, body: string, caller: Caller): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.post(name, path, body, caller);
      } catch (err) {
        const pause = 50 * 2 ** attempt;
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || attempt >= 3 || Date.now() + pause >= caller.deadline) throw err;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  private async post(name: string, path: string, body: string, caller: Caller): Promise<Answer> {
    const timeoutMs = Math.max(1, Math.floor(caller.deadline - Date.now()));
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await (this.pools.get(name) as Pool).request({
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-request-id': caller.requestId,
          [TIMEOUT_HEADER]: String(timeoutMs),
          ...(caller.authorization ? { authorization: caller.authorization } : {}),
        },
        body,
        signal,
      });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (err) {
      if (signal.aborted) throw Object.assign(new Error('timed out'), { name: 'TimeoutError' });
      throw err;
    }
  }

  close(): void {
    for (const p of this.pools.values()) void p.destroy();
  }
}

/**
 * The plugin's view of a call: the request's context plus `models`, its handles to spec.dependencies. A proxy
 * that reads everything else from the context itself, so its lazy getters (the abort signal, the logger) live
 * on the context that the deadline sweep aborts.
 */
export function withModels(ctx: RequestContext, deps: Dependencies | undefined): RequestContext {
  if (!deps) return ctx;
  let models: RequestContext['models'];
  return new Proxy(ctx, {
    get(target, prop) {
      if (prop === 'models') {
        models ??= deps.handles(target.requestId, target.deadline ?? Date.now() + 30_000, target.authorization);
        return models;
      }
      return Reflect.get(target, prop, target);
    },
  });
}
