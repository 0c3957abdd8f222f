// The CLI's side of the cluster: the kubeconfig's current context (checked to answer), ModelServings read
// by name, a POST to a ModelServing's Service through the API server's proxy, and its pods' logs through
// the API server. No pod addresses and no port-forwards: everything goes through the API server.
import type { RequestOptions } from 'node:https';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { CoreV1Api, CustomObjectsApi, KubeConfig, Log, VersionApi } from '@kubernetes/client-node';
import { GROUP, type ModelServing, PLURAL, VERSION } from '../crds/modelserving.schema.ts';
import { apiError } from '../operator/kube/errors.ts';
import { msError } from '../runtime/errors.ts';
import { localEnvironment } from './profile.ts';

/** The CLI's exit code for a ModelServing that does not exist (MS_ERR_CLI_NOT_FOUND; the Python client's `exists`). */
export const EXIT_NOT_FOUND = 4;
/** The runtime container of the operator's Deployments (operator/controller/desired/deployment.ts). */
const RUNTIME_CONTAINER = 'runtime';

export interface Cluster {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  namespace: string;
  server: string;
  context: string;
}

/** The first system error code (ECONNREFUSED, ENOTFOUND, …) in an error's chain of causes, else the innermost message. */
export function causeOf(err: unknown): string | undefined {
  let message: string | undefined;
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (typeof e.code === 'string') return e.code;
    if (typeof e.message === 'string' && e.message) message = e.message;
    e = e.cause as typeof e;
  }
  return message;
}

/**
 * The kubeconfig: $KUBECONFIG when set; else, while the local environment stands in for the profile
 * (cli/profile.ts), its cluster; else the default (~/.kube/config, in-cluster).
 */
export async function kubeConfig(): Promise<KubeConfig> {
  const kc = new KubeConfig();
  const local = process.env.KUBECONFIG ? undefined : await localEnvironment();
  if (local) kc.loadFromFile(local.kubeconfig);
  else kc.loadFromDefault();
  return kc;
}

/** The namespace of the kubeconfig's current context (default: default), without asking the cluster. */
export async function contextNamespace(): Promise<string> {
  const kc = await kubeConfig();
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
}

/** The kubeconfig's current context; any HTTP answer from its server counts as reachable. */
export async function connect(namespace?: string): Promise<Cluster> {
  const kc = await kubeConfig();
  const context = kc.getCurrentContext();
  const server = kc.getCurrentCluster()?.server ?? '(no cluster)';
  try {
    await kc.makeApiClient(VersionApi).getCode();
  } catch (err) {
    if (apiError(err).code === undefined) {
      throw msError('MS_ERR_CLI_CLUSTER_UNREACHABLE', { context, server, detail: causeOf(err) ?? 'no answer' }, err);
    }
  }
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    namespace: namespace ?? kc.getContextObject(context)?.namespace ?? 'default',
    server,
    context,
  };
}

export async function getModelServing(c: Cluster, name: string): Promise<ModelServing | undefined> {
  try {
    return (await c.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: c.namespace,
      plural: PLURAL,
      name,
    })) as ModelServing;
  } catch (err) {
    if (apiError(err).code === 404) return undefined;
    throw err;
  }
}

export async function requireModelServing(c: Cluster, name: string): Promise<ModelServing> {
  const m = await getModelServing(c, name);
  if (!m) throw msError('MS_ERR_CLI_NOT_FOUND', { namespace: c.namespace, name });
  return m;
}

export async function deleteModelServing(c: Cluster, name: string): Promise<void> {
  try {
    await c.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: c.namespace, plural: PLURAL, name });
  } catch (err) {
    if (apiError(err).code === 404) throw msError('MS_ERR_CLI_NOT_FOUND', { namespace: c.namespace, name });
    throw err;
  }
}

export interface ProxyAnswer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
}

/**
 * POSTs JSON to a path of a ModelServing's Service through the API server's service proxy (port `http`),
 * with the kubeconfig's credentials (the API server keeps the Authorization header: a token for the model itself
 * goes in `extraHeaders`, as x-modelship-authorization).
 */
export async function postThroughApiServer(
  c: Cluster,
  service: string,
  path: string,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<ProxyAnswer> {
  const base = c.server.replace(/\/+$/, '');
  const url = new URL(
    `${base}/api/v1/namespaces/${encodeURIComponent(c.namespace)}/services/${encodeURIComponent(service)}:http/proxy${path}`,
  );
  // The kubeconfig's credentials as TLS options (client certificate, CA) and headers (a token), for undici.
  const auth: RequestOptions = { headers: {} };
  await c.kc.applyToHTTPSOptions(auth);
  const dispatcher = new Agent({
    connect: {
      ...(auth.ca ? { ca: auth.ca } : {}),
      ...(auth.cert ? { cert: auth.cert } : {}),
      ...(auth.key ? { key: auth.key } : {}),
      ...(auth.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    },
  });
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { ...(auth.headers as Record<string, string>), 'content-type': 'application/json', ...extraHeaders },
      body: JSON.stringify(body),
      dispatcher,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  } catch (err) {
    const e = err as { code?: string; message: string };
    if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT')
      throw new Error(`no answer from ${url.origin} within 60 s`);
    throw err;
  } finally {
    await dispatcher.close();
  }
}

/**
 * The logs of a ModelServing's pods through the API server (which asks each pod's kubelet), each line
 * prefixed with its pod; `follow` keeps streaming. A pod whose logs cannot be read says why (the API
 * server's answer) and the others go on.
 */
export async function podLogs(
  c: Cluster,
  name: string,
  opts: { tail?: number | undefined; follow?: boolean | undefined },
  write: (line: string) => void,
): Promise<{ pods: string[]; failed: string[] }> {
  const selector = `app.kubernetes.io/instance=${name},app.kubernetes.io/managed-by=modelship-operator`;
  const pods = (await c.core.listNamespacedPod({ namespace: c.namespace, labelSelector: selector })).items;
  if (!pods.length) {
    await requireModelServing(c, name);
    throw new Error(`ModelServing ${c.namespace}/${name} has no pods (replicas 0, or not yet reconciled)`);
  }
  const names = pods.map((p) => p.metadata?.name ?? '?');
  const failed: string[] = [];
  await Promise.all(
    names.map(async (pod) => {
      let rest = '';
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          const lines = (rest + chunk.toString()).split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) write(`${pod} ${line}`);
          cb();
        },
      });
      try {
        const ctl = await new Log(c.kc).log(c.namespace, pod, RUNTIME_CONTAINER, sink, {
          follow: opts.follow === true,
          ...(opts.tail !== undefined ? { tailLines: opts.tail } : {}),
        });
        await new Promise<void>((resolve) => {
          if (sink.writableFinished) resolve();
          for (const ev of ['finish', 'close', 'error']) sink.once(ev, () => resolve());
          ctl.signal.addEventListener('abort', () => resolve());
        });
        if (rest) write(`${pod} ${rest}`);
      } catch (err) {
        failed.push(pod);
        write(`${pod}: cannot read its logs through the API server: ${apiError(err).message.split('\n')[0]}`);
      }
    }),
  );
  return { pods: names, failed };
}
