// The auth sidecar: `node runtime/main.ts auth`, a native sidecar in its own container under its own uid. It alone
// holds what checking a caller needs (the pod's ServiceAccount token, which may create TokenReviews and
// SubjectAccessReviews; or the API keys' Secret), so nothing of it is within reach of bundle code in the runtime
// container. The runtime asks it over a Unix socket in the pod's shared volume: `POST /check` with
// `{"token": …}` → `{"allowed": true, "subject": …}` or `{"allowed": false, "status": 401|403, "code", "message"}`.
//
// Modes (MODELSHIP_AUTH_MODE):
// - kubernetes: the token is a Kubernetes token (a ServiceAccount's, or any the API server authenticates), checked
//   by a TokenReview; its user must then be allowed the verb `predict` on this ModelServing (`modelservings`,
//   group modelship.dev, by name, in its namespace), asked by a SubjectAccessReview.
// - apiKeys: the token is one of the keys of a Secret mounted into this container (each key's value a key;
//   compared as sha256 digests in constant time; the Secret is read again when it changes on disk).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readdir, readFile, rm, chmod } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AuthenticationV1Api, AuthorizationV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { DEFAULTS, ENV } from '../contract.ts';
import { createLogger } from '../observability/logging.ts';

export type AuthMode = 'kubernetes' | 'apiKeys';
export const AUTH_MODES: readonly AuthMode[] = ['kubernetes', 'apiKeys'];

/** The answer to one check. */
export type Verdict =
  | { allowed: true; subject: string }
  | { allowed: false; status: 401 | 403; code: 'MS_ERR_AUTH_UNAUTHENTICATED' | 'MS_ERR_AUTH_FORBIDDEN'; message: string };

/** Decides about one token. */
export type Checker = (token: string) => Promise<Verdict>;

const unauthenticated = (message: string): Verdict => ({ allowed: false, status: 401, code: 'MS_ERR_AUTH_UNAUTHENTICATED', message });

/** The Kubernetes checker: TokenReview, then a SubjectAccessReview for `predict` on the ModelServing. */
export function kubernetesChecker(kc: KubeConfig, namespace: string, modelServing: string): Checker {
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  return async (token) => {
    const review = await authn.createTokenReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
    });
    const status = review.status;
    if (!status?.authenticated || !status.user?.username) {
      return unauthenticated(`the token is not valid${status?.error ? ` (${status.error})` : ''}`);
    }
    const user = status.user;
    const username = user.username as string;
    const sar = await authz.createSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: username,
          ...(user.groups ? { groups: user.groups } : {}),
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
          resourceAttributes: { namespace, verb: 'predict', group: 'modelship.dev', resource: 'modelservings', name: modelServing },
        },
      },
    });
    if (sar.status?.allowed) return { allowed: true, subject: username };
    return {
      allowed: false,
      status: 403,
      code: 'MS_ERR_AUTH_FORBIDDEN',
      message: `${username} may not predict with ModelServing ${namespace}/${modelServing}${sar.status?.reason ? ` (${sar.status.reason})` : ''}; grant the verb "predict" on modelservings.modelship.dev`,
    };
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The API-keys checker over a mounted Secret's directory: each file (not a dotfile) holds one key. */
export function apiKeysChecker(dir: string): Checker {
  let keys: { name: string; digest: Buffer }[] = [];
  let loadedAt = 0;
  const load = async () => {
    // The kubelet updates a mounted Secret in place (the ..data link): read again at most every 10 s.
    if (Date.now() - loadedAt < 10_000) return;
    const names = (await readdir(dir)).filter((n) => !n.startsWith('.'));
    keys = await Promise.all(names.map(async (name) => ({ name, digest: digest((await readFile(join(dir, name), 'utf8')).trim()) })));
    loadedAt = Date.now();
  };
  return async (token) => {
    await load();
    const d = digest(token);
    // Every key is compared, in constant time each, whichever matches.
    let match: string | undefined;
    for (const k of keys) if (timingSafeEqual(k.digest, d)) match ??= k.name;
    return match ? { allowed: true, subject: `api-key:${match}` } : unauthenticated("the API key is not one of the ModelServing's keys");
  };
}

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new Error('request too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export interface AuthSidecar {
  server: Server;
  close(): Promise<void>;
}

/** Serves checks on the Unix socket (group read-write: the runtime runs as another user of the pod's group). */
export async function startAuthSidecar(socketPath: string, check: Checker, log: Logger): Promise<AuthSidecar> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const answer = (status: number, value: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.method !== 'POST' || req.url !== '/check') return answer(404, { error: 'POST /check only' });
    body(req)
      .then(async (b) => {
        const token = (b as { token?: unknown })?.token;
        if (typeof token !== 'string' || token.length === 0 || token.length > 16_384)
          return answer(400, { error: 'token must be a non-empty string' });
        const verdict = await check(token);
        if (!verdict.allowed) log.info({ status: verdict.status, reason: verdict.message }, 'auth: refused');
        answer(200, verdict);
      })
      .catch((err: Error) => {
        log.error({ err: err.message }, 'auth: the check failed');
        answer(502, { error: err.message });
      });
  });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o660);
  return { server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger(env[ENV.logLevel] || DEFAULTS.logLevel, { model: env[ENV.modelName] ?? 'model', container: 'auth' });
  const mode = env[ENV.authMode] as AuthMode | undefined;
  const socket = env[ENV.authSocket];
  let check: Checker;
  try {
    if (!socket) throw new Error(`${ENV.authSocket} is not set`);
    if (mode === 'kubernetes') {
      const namespace = env[ENV.namespace];
      const name = env[ENV.modelName];
      if (!namespace || !name) throw new Error(`${ENV.namespace} and ${ENV.modelName} must be set`);
      const kc = new KubeConfig();
      kc.loadFromCluster();
      check = kubernetesChecker(kc, namespace, name);
    } else if (mode === 'apiKeys') {
      const dir = env[ENV.authKeysDir];
      if (!dir) throw new Error(`${ENV.authKeysDir} is not set`);
      check = apiKeysChecker(dir);
    } else throw new Error(`${ENV.authMode} must be one of ${AUTH_MODES.join(', ')}`);
  } catch (err) {
    log.fatal({ code: 'MS_ERR_CONFIG_INVALID' }, (err as Error).message);
    process.exit(2);
  }
  const sidecar = await startAuthSidecar(socket, check, log);
  log.info({ socket, mode }, 'auth: listening');
  process.once('SIGTERM', () => void sidecar.close().then(() => process.exit(0)));
}
