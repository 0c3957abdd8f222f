// The runtime's side of authentication (spec.auth): every inference, feedback and custom-route request (and /metrics
// on the inference port) must carry a bearer token — `Authorization: Bearer <token>`, or `x-modelship-authorization`
// for callers through the API server's service proxy, which keeps the Authorization header for itself — that the
// auth sidecar (sidecar.ts) accepts. Verdicts are cached briefly by the token's digest (allowed 10 s, refused 2 s),
// so a client's steady traffic costs one check per 10 s, and a flood of bad tokens one per 2 s per token.
// Health and model metadata stay open.
import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { FORWARDED_AUTH_HEADER } from '../contract.ts';
import { type ModelshipError, msError } from '../errors.ts';
import type { Verdict } from './sidecar.ts';

export { FORWARDED_AUTH_HEADER };

const ALLOWED_TTL_MS = 10_000;
const REFUSED_TTL_MS = 2_000;
const MAX_CACHED = 10_000;
/** Checks asked of the sidecar at once; beyond it a request is refused with 503 (a flood of new tokens). */
const MAX_PENDING = 256;
/** How long a check may take (the sidecar's TokenReview and SubjectAccessReview). */
const CHECK_TIMEOUT_MS = 5_000;

/** The bearer token of a request's headers, if any. Pure. */
export function bearerToken(authorization: unknown, forwarded?: unknown): string | undefined {
  for (const h of [authorization, forwarded]) {
    if (typeof h !== 'string') continue;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The caller's credentials as they go on to the dependencies it calls (`Authorization: Bearer <token>`), from
 * whichever header carried them (a call through the API server's proxy has only the forwarded one). Pure.
 */
export function callerAuthorization(authorization: unknown, forwarded?: unknown): string | undefined {
  const token = bearerToken(authorization, forwarded);
  return token === undefined ? undefined : `Bearer ${token}`;
}

export class AuthGate {
  private readonly client: Pool;
  private readonly cache = new Map<string, { verdict: Verdict; until: number }>();
  private readonly pending = new Map<string, Promise<Verdict>>();

  constructor(socketPath: string) {
    this.client = new Pool('http://auth', { socketPath, connections: 8, headersTimeout: CHECK_TIMEOUT_MS, bodyTimeout: CHECK_TIMEOUT_MS });
  }

  /** Resolves when the request may go on; throws 401 or 403 (or 503 when the sidecar cannot answer). */
  async check(authorization: unknown, forwarded?: unknown): Promise<void> {
    const token = bearerToken(authorization, forwarded);
    if (token === undefined) {
      throw msError('MS_ERR_AUTH_UNAUTHENTICATED', {
        detail: 'send Authorization: Bearer <token> (a Kubernetes token, or an API key, as spec.auth says)',
      });
    }
    const key = createHash('sha256').update(token).digest('base64');
    const now = Date.now();
    const hit = this.cache.get(key);
    const verdict = hit && hit.until > now ? hit.verdict : await this.ask(key, token);
    if (!verdict.allowed) throw refusal(verdict);
  }

  private ask(key: string, token: string): Promise<Verdict> {
    let p = this.pending.get(key);
    if (p) return p;
    if (this.pending.size >= MAX_PENDING) return Promise.reject(unavailable(`${MAX_PENDING} checks are already waiting`));
    p = this.client
      .request({ path: '/check', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
      .then(async (res) => {
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`the auth sidecar answered ${res.statusCode}: ${text.slice(0, 200)}`);
        const verdict = JSON.parse(text) as Verdict;
        // The oldest entry goes (a Map keeps insertion order): a flood of new tokens evicts its own, not all.
        if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(key, { verdict, until: Date.now() + (verdict.allowed ? ALLOWED_TTL_MS : REFUSED_TTL_MS) });
        return verdict;
      })
      .catch((err: Error) => {
        throw unavailable(err.message);
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

function unavailable(detail: string): ModelshipError {
  const err = msError('MS_ERR_AUTH_UNAVAILABLE', { detail });
  err.retryAfterSeconds = 1;
  return err;
}

function refusal(v: Exclude<Verdict, { allowed: true }>): ModelshipError {
  const err =
    v.status === 403
      ? msError('MS_ERR_AUTH_FORBIDDEN', { detail: v.message })
      : msError('MS_ERR_AUTH_UNAUTHENTICATED', { detail: v.message });
  return err;
}
