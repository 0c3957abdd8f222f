import { ApiextensionsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestEnv } from '../env/fixtures.ts';

const env = useTestEnv();
const custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
const _ext = env.kubeConfig.makeApiClient(ApiextensionsV1Api);
let ns: string;

const kubectl = (...args: string[]) => env.kubectl(args);

function ms(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'modelship.dev/v1alpha1', kind: 'ModelServing', metadata: { name }, spec };
}

async function create(body: Record<string, unknown>) {
  return custom.createNamespacedCustomObject({ group: 'modelship.dev', version: 'v1alpha1', namespace: ns, plural: 'modelservings', body });
}

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('crd');
});

const good = { bundle: { uri: 's3://models/iris/1/bundle.zip' } };

describe('ModelServing CRD on the API server', () => {
  it('accepts a minimal spec and fills in the defaults', async () => {
    const created = (await create(ms('iris', { ...good, autoscaling: { maxReplicas: 4 }, inferenceLogging: {}, runtime: {} }))) as {
      spec: Record<string, unknown>;
    };
    expect(created.spec).toMatchObject({
      replicas: 1,
      autoscaling: { minReplicas: 1, maxReplicas: 4, metric: 'cpu', target: 70 },
      inferenceLogging: { topic: 'NONE', mode: 'all', sampleRate: 1 },
      runtime: { timeoutSeconds: 30 },
    });
  });

  it('answers kubectl explain, short names, categories and scale', async () => {
    expect(kubectl('explain', 'modelserving.spec.bundle')).toContain('The model bundle to serve');
    expect(kubectl('explain', 'ms.spec.autoscaling.maxReplicas')).toContain('Most replicas');
    await create(ms('scaled', good));
    kubectl('-n', ns, 'scale', 'ms/scaled', '--replicas=3');
    expect(kubectl('-n', ns, 'get', 'ms', 'scaled', '-o', 'jsonpath={.spec.replicas}')).toBe('3');
    expect(kubectl('-n', ns, 'get', 'modelship')).toContain('scaled');
    expect(kubectl('-n', ns, 'get', 'ms')).toMatch(/NAME\s+READY\s+REPLICAS\s+URL\s+REASON\s+AGE/);
  });

  it.each([
    [
      'a bundle URI with another scheme',
      { bundle: { uri: 'gs://b/k' } },
      'spec.bundle.uri: Invalid value: "string": uri must start with s3://, https://, http:// or file://',
    ],
    ['no bundle', { replicas: 1 }, 'spec.bundle: Required value'],
    [
      'a malformed sha256',
      { bundle: { ...good.bundle, sha256: 'XYZ' } },
      'spec.bundle.sha256: Invalid value: "XYZ": spec.bundle.sha256 in body should match',
    ],
    [
      'storage for an https bundle',
      { bundle: { uri: 'https://h/b.zip', storage: { region: 'x' } } },
      'storage applies only to s3:// bundle URIs',
    ],
    [
      'a storage endpoint without scheme',
      { bundle: { ...good.bundle, storage: { endpoint: 'minio:9000' } } },
      'endpoint must be an http:// or https:// URL',
    ],
    [
      'negative replicas',
      { ...good, replicas: -1 },
      'spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0',
    ],
    [
      'minReplicas above maxReplicas',
      { ...good, autoscaling: { minReplicas: 5, maxReplicas: 2 } },
      'minReplicas must not exceed maxReplicas',
    ],
    ['autoscaling without maxReplicas', { ...good, autoscaling: { minReplicas: 1 } }, 'spec.autoscaling.maxReplicas: Required value'],
    [
      'an unknown metric',
      { ...good, autoscaling: { maxReplicas: 3, metric: 'gpu' } },
      'spec.autoscaling.metric: Unsupported value: "gpu": supported values: "cpu", "memory"',
    ],
    ['a target over 100%', { ...good, autoscaling: { maxReplicas: 3, target: 150 } }, 'spec.autoscaling.target: Invalid value: 150'],
    ['a bad topic name', { ...good, inferenceLogging: { topic: 'no spaces allowed' } }, 'topic must be CREATE, NONE or a Kafka topic name'],
    [
      'deleteTopicOnDelete for an existing topic',
      { ...good, inferenceLogging: { topic: 'existing', deleteTopicOnDelete: true } },
      'deleteTopicOnDelete applies only to topic: CREATE',
    ],
    ['a sample rate above 1', { ...good, inferenceLogging: { sampleRate: 1.5 } }, 'spec.inferenceLogging.sampleRate: Invalid value: 1.5'],
    ['a malformed quantity', { ...good, resources: { requests: { cpu: 'lots' } } }, 'spec.resources.requests.cpu'],
    [
      'a reserved env var',
      { ...good, runtime: { env: [{ name: 'MODELSHIP_BUNDLE_URI', value: 'x' }] } },
      'MODELSHIP_* variables are set by the operator',
    ],
    ['a timeout over an hour', { ...good, runtime: { timeoutSeconds: 7200 } }, 'spec.runtime.timeoutSeconds: Invalid value: 7200'],
  ])('refuses %s with a readable message', async (_what, spec, message) => {
    const err = (await create(ms(`bad-${Math.random().toString(36).slice(2, 8)}`, spec)).catch((e: unknown) => e)) as {
      code: number;
      body: string;
    };
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body).message).toContain(message);
  });

  it('refuses a name that cannot name a Service', async () => {
    const err = (await create(ms('1model', good)).catch((e: unknown) => e)) as { code: number; body: string };
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body).message).toContain('metadata.name must be a DNS-1035 label');
  });
});
