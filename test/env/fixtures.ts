// Per-test-file isolation on the shared environment: each file gets its own namespace, bucket and topic
// names (derived from a random suffix), created on demand and removed after the file's tests.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Admin } from '@platformatic/kafka';
import { Client as MinioClient } from 'minio';
import { afterAll, inject } from 'vitest';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import type { EnvInfo } from '../../env/env.ts';
import { KWOK_TAINT } from '../../env/nodes.ts';
import { OPERATOR_LABEL } from '../../operator/controller/desired/labels.ts';

export interface TestEnv {
  info: EnvInfo;
  kubeConfig: KubeConfig;
  /**
   * A namespace of this file's own, created now and deleted after the file. It is claimed for the tests
   * (label modelship.dev/operator), so an operator watching every namespace (the demo's) leaves it alone;
   * its pods go to the kwok nodes unless `nodes: 'any'` (for tests that place their pods themselves, e.g. on
   * the real or the process node).
   */
  namespace(prefix?: string, opts?: { nodes?: 'kwok' | 'any' }): Promise<string>;
  /** A bucket of this file's own, created now and emptied + removed after the file. */
  bucket(prefix?: string): Promise<string>;
  /** A topic name of this file's own; created now when `create` (the default), deleted after the file. */
  topic(prefix?: string, create?: boolean): Promise<string>;
  minio(): MinioClient;
  kafkaAdmin(): Admin;
  /** Runs the environment's kubectl against its API server; `input` goes to stdin. */
  kubectl(args: string[], input?: string): string;
  /** Installs (server-side applies) the committed CRDs (ModelServing, BatchPrediction) and waits until they are established. */
  installCrd(): void;
  /** ModelServings of a namespace (a function, for namespaces made in beforeAll): create, get, patch spec, delete. */
  modelServings(namespace: string | (() => string)): ModelServingClient;
}

export interface ModelServingClient {
  create(name: string, spec: Record<string, unknown>): Promise<unknown>;
  get(name: string): Promise<ModelServing>;
  /** A merge patch of spec, with kubectl as a user would. */
  patch(name: string, spec: Record<string, unknown>): string;
  delete(name: string): Promise<unknown>;
  /** True once the API server answers 404 for it (deleted, finalizers done). */
  gone(name: string): Promise<boolean>;
}

/** The claim on the tests' namespaces: no operator has this name, so only the tests' own (given their namespaces) work there. */
export const TEST_OPERATOR = 'modelship-tests';

const CRD_FILES = ['modelship.dev_modelservings.yaml', 'modelship.dev_batchpredictions.yaml'].map((f) =>
  join(import.meta.dirname, '../../crds', f),
);

export function minioClient(info: EnvInfo): MinioClient {
  const url = new URL(info.s3.endpoint);
  return new MinioClient({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: url.protocol === 'https:',
    accessKey: info.s3.accessKey,
    secretKey: info.s3.secretKey,
    region: info.s3.region,
  });
}

export function kubeConfigFor(info: EnvInfo): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfig);
  return kc;
}

const suffix = () => randomBytes(3).toString('hex');

export function useTestEnv(): TestEnv {
  const info = inject('modelshipEnv');
  const kubeConfig = kubeConfigFor(info);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const minio = minioClient(info);
  let admin: Admin | undefined;
  const kafkaAdmin = () => {
    admin ??= new Admin({ clientId: 'modelship-test', bootstrapBrokers: info.kafka.bootstrapServers });
    return admin;
  };
  const namespaces: string[] = [];
  const buckets: string[] = [];
  const topics: string[] = [];

  afterAll(async () => {
    for (const ns of namespaces) {
      await core.deleteNamespace({ name: ns }).catch(() => {});
    }
    for (const b of buckets) {
      const names: string[] = [];
      for await (const obj of minio.listObjectsV2(b, '', true)) if (obj.name) names.push(obj.name);
      if (names.length) await minio.removeObjects(b, names);
      await minio.removeBucket(b);
    }
    if (topics.length)
      await kafkaAdmin()
        .deleteTopics({ topics })
        .catch(() => {});
    await admin?.close();
  });

  const kubectl = (args: string[], input?: string) =>
    execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, ...args], {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: info.kubeconfig },
    });
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const modelServings = (namespace: string | (() => string)): ModelServingClient => {
    const ns = () => (typeof namespace === 'string' ? namespace : namespace());
    const at = (name?: string) => ({
      group: 'modelship.dev',
      version: 'v1alpha1',
      namespace: ns(),
      plural: 'modelservings',
      ...(name ? { name } : {}),
    });
    return {
      create: (name, spec) =>
        custom.createNamespacedCustomObject({
          ...at(),
          body: { apiVersion: 'modelship.dev/v1alpha1', kind: 'ModelServing', metadata: { name }, spec },
        }),
      get: (name) => custom.getNamespacedCustomObject(at(name) as never) as Promise<ModelServing>,
      patch: (name, spec) => kubectl(['-n', ns(), 'patch', 'ms', name, '--type=merge', '-p', JSON.stringify({ spec })]),
      delete: (name) => custom.deleteNamespacedCustomObject(at(name) as never),
      gone: (name) =>
        custom.getNamespacedCustomObject(at(name) as never).then(
          () => false,
          (err: { code?: number }) => err.code === 404,
        ),
    };
  };
  return {
    info,
    kubeConfig,
    kubectl,
    modelServings,
    installCrd() {
      // kubectl, not client-node: its typed serializer would drop the CRD's x-kubernetes-* fields.
      kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=modelship-test', ...CRD_FILES.flatMap((f) => ['-f', f])]);
      kubectl([
        'wait',
        '--for=condition=Established',
        'crd/modelservings.modelship.dev',
        'crd/batchpredictions.modelship.dev',
        '--timeout=30s',
      ]);
    },
    minio: () => minio,
    kafkaAdmin,
    async namespace(prefix = 'test', opts: { nodes?: 'kwok' | 'any' } = {}) {
      const name = `${prefix}-${suffix()}`;
      const labels = { 'modelship.dev/test': 'true', [OPERATOR_LABEL]: TEST_OPERATOR };
      const annotations: Record<string, string> =
        (opts.nodes ?? 'kwok') === 'kwok'
          ? {
              'scheduler.alpha.kubernetes.io/node-selector': 'type=kwok',
              'scheduler.alpha.kubernetes.io/defaultTolerations': JSON.stringify([{ ...KWOK_TAINT, operator: 'Equal' }]),
            }
          : {};
      await core.createNamespace({ body: { metadata: { name, labels, annotations } } });
      namespaces.push(name);
      return name;
    },
    async bucket(prefix = 'test') {
      const name = `${prefix}-${suffix()}`;
      await minio.makeBucket(name, info.s3.region);
      buckets.push(name);
      return name;
    },
    async topic(prefix = 'test', create = true) {
      const name = `${prefix}.${suffix()}`;
      if (create) await kafkaAdmin().createTopics({ topics: [name], partitions: 1, replicas: 1 });
      topics.push(name);
      return name;
    },
  };
}
