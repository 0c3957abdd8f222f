// Authentication with API keys: the auth sidecar (on a real Unix socket, over a real Secret-like directory) and the
// runtime's gate in front of inference, feedback, custom routes and /metrics; health and metadata stay open.
// The Kubernetes mode (TokenReview, SubjectAccessReview) is tested on the real node (test/e2e/auth.int.test.ts).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthGate, bearerToken } from '../../runtime/auth/gate.ts';
import { type AuthSidecar, apiKeysChecker, startAuthSidecar } from '../../runtime/auth/sidecar.ts';
import { appFor, makeBundle, silent } from './helpers.ts';

const PLUGIN = `
export function predict(input) { return { y: input.x }; }
export function routes(register) { register('GET', '/hello', () => ({ hi: true })); }
`;
const infer = { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [3] }] };

let sidecar: AuthSidecar;
let gate: AuthGate;
beforeAll(async () => {
  const keys = await mkdtemp(join(tmpdir(), 'ms-keys-'));
  await writeFile(join(keys, 'team-a'), 'key-of-team-a\n');
  await writeFile(join(keys, 'team-b'), 'key-of-team-b');
  const socket = join(await mkdtemp(join(tmpdir(), 'ms-auth-')), 'auth.sock');
  sidecar = await startAuthSidecar(socket, apiKeysChecker(keys), silent);
  gate = new AuthGate(socket);
});
afterAll(async () => {
  await gate.close();
  await sidecar.close();
});

describe('API-key authentication', () => {
  it('refuses a request without a key or with a wrong one (401 with a code), and serves one with a key', async () => {
    const { app, engine } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), { name: 'm' });
    const authed = (await import('../../runtime/app.ts')).build({
      model: app.plane.model,
      metrics: app.plane.metrics,
      log: silent,
      recorder: app.plane.recorder,
      auth: gate,
    });
    try {
      const none = await authed.inject({ method: 'POST', url: '/v2/models/m/infer', payload: infer });
      expect(none.statusCode).toBe(401);
      expect(none.json().code).toBe('MS_ERR_AUTH_UNAUTHENTICATED');
      expect(none.headers['www-authenticate']).toBe('Bearer');
      const wrong = await authed.inject({
        method: 'POST',
        url: '/v2/models/m/infer',
        headers: { authorization: 'Bearer not-a-key' },
        payload: infer,
      });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error).toContain("not one of the ModelServing's keys");
      for (const key of ['key-of-team-a', 'key-of-team-b']) {
        const ok = await authed.inject({
          method: 'POST',
          url: '/v2/models/m/infer',
          headers: { authorization: `Bearer ${key}` },
          payload: infer,
        });
        expect(ok.statusCode).toBe(200);
        expect(ok.json().outputs[0].data).toEqual([3]);
      }
      // Through the API server's proxy the key travels in x-modelship-authorization.
      const proxied = await authed.inject({
        method: 'POST',
        url: '/v1/models/m:predict',
        headers: { 'x-modelship-authorization': 'Bearer key-of-team-a' },
        payload: { instances: [{ x: 1 }] },
      });
      expect(proxied.statusCode).toBe(200);
      // Feedback, custom routes and /metrics need a key too; health, readiness and metadata do not.
      expect((await authed.inject({ method: 'POST', url: '/v2/models/m/feedback', payload: { id: 'r', y: 1 } })).statusCode).toBe(401);
      expect((await authed.inject({ method: 'GET', url: '/v2/models/m/custom/hello' })).statusCode).toBe(401);
      expect(
        (
          await authed.inject({ method: 'GET', url: '/v2/models/m/custom/hello', headers: { authorization: 'Bearer key-of-team-b' } })
        ).json(),
      ).toEqual({ hi: true });
      expect((await authed.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      for (const open of ['/v2/health/live', '/v2/health/ready', '/v2/models/m', '/v2/models/m/ready']) {
        expect((await authed.inject({ method: 'GET', url: open })).statusCode).toBe(200);
      }
    } finally {
      await authed.close();
      await app.close();
      await engine.close();
    }
  });

  it('reads the bearer token of either header', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer abc ')).toBe('abc');
    expect(bearerToken(undefined, 'Bearer xyz')).toBe('xyz');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken(['Bearer a'])).toBeUndefined();
  });
});
