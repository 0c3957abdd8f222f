// The Helm chart: lint-clean, accepted by the real API server under Pod Security "restricted", and its RBAC
// is enough (and no more) for the operator to reconcile a ModelServing end to end.
import { execFileSync } from 'node:child_process';

import { join } from 'node:path';
import { AppsV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchPrediction } from '../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { BatchPredictionController } from '../../operator/controller/batch/controller.ts';
import { desiredPlanJob } from '../../operator/controller/batch/plan-job.ts';
import { desiredShardJob } from '../../operator/controller/batch/shard-job.ts';
import { batchModel } from '../../operator/controller/batch/spec.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { desiredDeployment } from '../../operator/controller/desired/deployment.ts';
import { LeaderElector } from '../../operator/kube/leader.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();
const CHART = join(import.meta.dirname, '../../charts/modelship');
const run = (bin: string, args: string[], input?: string) =>
  execFileSync(bin, args, {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: env.info.kubeconfig },
  });
const kubectl = (args: string[], input?: string) => env.kubectl(args, input);
const helm = (args: string[]) => run(env.info.binaries.helm, args);
const RELEASE = `chart-${Date.now().toString(36)}`;
const OPERATOR = `${RELEASE}-operator`;
let system: string;
let restricted: string;
let controller: ModelServingController | undefined;
let batchController: BatchPredictionController | undefined;
let leader: LeaderElector | undefined;
let rbac: any[] = [];
let serverVersion = '';

const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** `kubectl auth can-i` as a ServiceAccount: "yes" or "no" (kubectl exits 1 on "no"). */
function canI(namespace: string, serviceAccount: string, args: string[]): string {
  try {
    return kubectl(['auth', 'can-i', `--as=system:serviceaccount:${namespace}:${serviceAccount}`, ...args]).trim();
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? '').trim();
  }
}

/** A KubeConfig that authenticates as a ServiceAccount (a token of it): exactly its RBAC, nothing more. */
function tokenKubeConfig(serviceAccount: string, namespace: string): KubeConfig {
  const token = kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=1h']).trim();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: env.kubeConfig.getCurrentCluster()?.server ?? '', caFile: env.info.pki.ca, skipTLSVerify: false }],
    users: [{ name: serviceAccount, token }],
    contexts: [{ name: 'ctx', cluster: 'c', user: serviceAccount }],
    currentContext: 'ctx',
  });
  return kc;
}

beforeAll(async () => {
  env.installCrd();
  system = await env.namespace('ms-system');
  restricted = await env.namespace('restricted');
  kubectl([
    'label',
    'namespace',
    restricted,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/enforce-version=latest',
  ]);
  serverVersion = JSON.parse(kubectl(['version', '-o', 'json'])).serverVersion.gitVersion;
  // A release name of this file's own: its cluster-wide RBAC must not replace (nor, at the end, delete) that
  // of a release the user runs in the same cluster (the demo's is called modelship).
  const rendered = helm(['template', RELEASE, CHART, '-n', system, '--kube-version', serverVersion]);
  rbac = parseAllDocuments(rendered)
    .map((d) => d.toJS())
    .filter((d) => RBAC_KINDS.includes(d?.kind));
  kubectl(['apply', '-n', system, '-f', '-'], rbac.map((d) => stringify(d)).join('---\n'));
});
afterAll(async () => {
  await controller?.stop();
  await batchController?.stop();
  await leader?.release();
  kubectl(['delete', 'clusterrole,clusterrolebinding', OPERATOR, '--ignore-not-found']);
});

describe('Helm chart', () => {
  it('lints clean', () => {
    const out = helm(['lint', CHART, '--strict']);
    expect(out).toContain('0 chart(s) failed');
    expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it('refuses values outside its schema', () => {
    const base = ['template', 'x', CHART, '--kube-version', serverVersion];
    expect(() => helm([...base, '--set', 'replicas=-1'])).toThrow(/replicas/);
    expect(() => helm([...base, '--set', 'nope=1'])).toThrow(/nope/);
    expect(() => helm(['template', 'x', CHART, '--kube-version', 'v1.29.0'])).toThrow(/kubeVersion/);
  });

  it('is accepted by the API server (its kubeVersion check included), and its pods meet Pod Security "restricted"', () => {
    // helm asks the real server for its version: the ldflags-injected v1.34.x satisfies kubeVersion.
    // A release name of its own: --validate makes helm check ownership of existing cluster-scoped objects.
    const release = `ms-${Date.now().toString(36)}`;
    const rendered = helm(['template', release, CHART, '-n', restricted, '--validate']);
    kubectl(['apply', '--dry-run=server', '-n', restricted, '-f', '-'], rendered);
    const docs = parseAllDocuments(rendered).map((d) => d.toJS());
    const operatorDeployment = docs.find((d) => d?.kind === 'Deployment');
    const ms: ModelServing = {
      apiVersion: 'modelship.dev/v1alpha1',
      kind: 'ModelServing',
      metadata: { name: 'iris', namespace: restricted, uid: 'x' },
      spec: { bundle: { uri: 's3://b/k.zip' }, replicas: 1 },
    };
    // Pod Security is enforced on pods: dry-run the pods both Deployments and a BatchPrediction's two Jobs would create.
    const bp: BatchPrediction = {
      apiVersion: 'modelship.dev/v1alpha1',
      kind: 'BatchPrediction',
      metadata: { name: 'score', namespace: restricted, uid: 'y' },
      spec: {
        model: { modelServing: 'iris' },
        input: {
          uri: 's3://b/in/',
          storage: { endpoint: 'http://minio:9000', secretRef: { name: 's', accessKeyKey: 'accessKey', secretKeyKey: 'secretKey' } },
        },
        output: { uri: 's3://b/out' },
        parallelism: 2,
        batchSize: 1024,
        maxRowErrors: 100,
        rowsPerShard: 250_000,
        backoffLimitPerIndex: 3,
      },
    };
    const model = batchModel(bp, ms) as ModelServing;
    for (const template of [
      operatorDeployment.spec.template,
      desiredDeployment(ms, DEFAULT_CONFIG).spec?.template,
      desiredPlanJob(bp, DEFAULT_CONFIG, model).spec?.template,
      desiredShardJob(bp, DEFAULT_CONFIG, model, 3).spec?.template,
    ]) {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'probe', namespace: restricted, labels: template.metadata.labels },
        spec: template.spec,
      };
      if (pod.spec.serviceAccountName) pod.spec = { ...pod.spec, serviceAccountName: 'default' };
      const out = kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(pod));
      expect(out).toContain('created (server dry run)');
    }
    // And a pod that breaks "restricted" is refused, so the check above can fail.
    const bad = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bad', namespace: restricted },
      spec: { containers: [{ name: 'c', image: 'x' }] },
    };
    expect(() => kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(bad))).toThrow(/violates PodSecurity "restricted/);
  });

  it('gives the operator no Secret access and nothing beyond its resources', () => {
    const rules = rbac.flatMap((d) => d.rules ?? []);
    expect(rules.length).toBeGreaterThan(5);
    expect(JSON.stringify(rules)).not.toContain('*');
    const can = (...args: string[]) => canI(system, OPERATOR, args);
    expect(can('get', 'secrets', '-A')).toBe('no');
    expect(can('list', 'secrets', '-n', system)).toBe('no');
    expect(can('patch', 'deployments', '-n', restricted)).toBe('yes');
    expect(can('delete', 'modelservings.modelship.dev', '-n', restricted)).toBe('no');
    // patch is for the finalizer (server-side apply of metadata.finalizers); no update, no create.
    expect(can('patch', 'modelservings.modelship.dev', '-n', restricted)).toBe('yes');
    expect(can('update', 'modelservings.modelship.dev', '-n', restricted)).toBe('no');
    expect(can('create', 'modelservings.modelship.dev', '-n', restricted)).toBe('no');
    expect(can('update', `leases.coordination.k8s.io/${OPERATOR}`, '-n', system)).toBe('yes');
    expect(can('update', 'leases.coordination.k8s.io', '-n', restricted)).toBe('no');
    // Its own Lease only: another release's leader is none of its business.
    expect(can('update', 'leases.coordination.k8s.io/other-operator', '-n', system)).toBe('no');
    // spec.auth (kubernetes): the one binding of the auth ServiceAccounts, and those ServiceAccounts; nothing else of RBAC.
    expect(can('patch', `clusterrolebindings.rbac.authorization.k8s.io/${OPERATOR}-runtime-auth`)).toBe('yes');
    expect(can('patch', 'clusterrolebindings.rbac.authorization.k8s.io/cluster-admin')).toBe('no');
    expect(can('create', 'clusterrolebindings.rbac.authorization.k8s.io')).toBe('no');
    expect(can('create', 'rolebindings.rbac.authorization.k8s.io', '-n', restricted)).toBe('no');
    expect(can('patch', 'serviceaccounts/modelship-auth', '-n', restricted)).toBe('yes');
    expect(can('patch', 'serviceaccounts/default', '-n', restricted)).toBe('no');
    expect(can('delete', 'serviceaccounts/modelship-auth', '-n', restricted)).toBe('no');
    expect(can('create', 'serviceaccounts', '--subresource=token', '-n', restricted)).toBe('no');
    expect(can('create', 'tokenreviews.authentication.k8s.io')).toBe('no');
    expect(can('create', 'subjectaccessreviews.authorization.k8s.io')).toBe('no');
    expect(can('bind', 'clusterroles.rbac.authorization.k8s.io/system:auth-delegator')).toBe('yes');
    expect(can('bind', 'clusterroles.rbac.authorization.k8s.io/cluster-admin')).toBe('no');
    // BatchPredictions: read, and their status; never their spec. Their Jobs: made, never updated nor deleted.
    expect(can('watch', 'batchpredictions.modelship.dev', '-n', restricted)).toBe('yes');
    expect(can('patch', 'batchpredictions.modelship.dev', '--subresource=status', '-n', restricted)).toBe('yes');
    expect(can('patch', 'batchpredictions.modelship.dev', '-n', restricted)).toBe('no');
    expect(can('create', 'batchpredictions.modelship.dev', '-n', restricted)).toBe('no');
    expect(can('delete', 'batchpredictions.modelship.dev', '-n', restricted)).toBe('no');
    expect(can('create', 'jobs.batch', '-n', restricted)).toBe('yes');
    expect(can('patch', 'jobs.batch', '-n', restricted)).toBe('yes');
    expect(can('update', 'jobs.batch', '-n', restricted)).toBe('no');
    expect(can('delete', 'jobs.batch', '-n', restricted)).toBe('no');
    expect(can('create', 'cronjobs.batch', '-n', restricted)).toBe('no');
  });

  it('names the Lease after the release, so two releases elect a leader each', () => {
    for (const release of ['modelship', 'second']) {
      const docs = parseAllDocuments(helm(['template', release, CHART, '-n', system, '--kube-version', serverVersion])).map((d) =>
        d.toJS(),
      );
      const deployment = docs.find((d) => d?.kind === 'Deployment');
      const env = deployment.spec.template.spec.containers[0].env as { name: string; value?: string }[];
      expect(env.find((e) => e.name === 'MODELSHIP_LEASE_NAME')?.value).toBe(`${release}-operator`);
      const role = docs.find((d) => d?.kind === 'Role' && d.metadata.name.endsWith('-leader-election'));
      expect(role.rules).toContainEqual({
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: [`${release}-operator`],
        verbs: ['get', 'update'],
      });
    }
  });

  it('lets the operator create PersistentVolumeClaims only when it is to make the environment cache claim', () => {
    const render = (...set: string[]) =>
      parseAllDocuments(helm(['template', 'x', CHART, '-n', system, '--kube-version', serverVersion, ...set.flatMap((v) => ['--set', v])]))
        .map((d) => d.toJS())
        .filter(Boolean);
    const pvcRules = (docs: { kind: string; rules?: { resources: string[] }[] }[]) =>
      docs
        .filter((d) => d.kind === 'ClusterRole')
        .flatMap((d) => (d.rules ?? []).filter((r) => r.resources.includes('persistentvolumeclaims')));
    expect(pvcRules(render())).toEqual([]);
    expect(pvcRules(render('python.envCache.claimName=envs'))).toEqual([]);
    const docs = render('python.envCache.claimName=envs', 'python.envCache.storageClassName=local');
    expect(pvcRules(docs)).toEqual([{ apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'create', 'patch'] }]);
    const env = docs.find((d) => d.kind === 'Deployment').spec.template.spec.containers[0].env as { name: string; value: string }[];
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'MODELSHIP_PYTHON_ENV_CACHE', value: 'pvc:envs' },
        { name: 'MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS', value: 'local' },
        { name: 'MODELSHIP_PYTHON_ENV_CACHE_SIZE', value: '20Gi' },
      ]),
    );
  });

  it("runs the operator with exactly the chart's RBAC and reconciles a ModelServing end to end", async () => {
    const kc = tokenKubeConfig(OPERATOR, system);
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    leader = new LeaderElector(kc, { namespace: system, name: OPERATOR, identity: 'chart-test', log });
    await leader.acquire(() => {});
    const target = await env.namespace('chart-ms');
    controller = new ModelServingController(
      kc,
      {
        ...DEFAULT_CONFIG,
        namespaces: [target],
        workers: 1,
        kafka: { bootstrapServers: env.info.kafka.bootstrapServers, tls: false, tlsCa: undefined, sasl: undefined },
        topicPartitions: 2,
      },
      log,
      new OperatorMetrics({ processMetrics: false }),
    );
    await controller.start();
    const custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group: 'modelship.dev',
      version: 'v1alpha1',
      namespace: target,
      plural: 'modelservings',
      body: {
        apiVersion: 'modelship.dev/v1alpha1',
        kind: 'ModelServing',
        metadata: { name: 'rbac' },
        spec: { bundle: { uri: 's3://b/k.zip' }, replicas: 2, inferenceLogging: { topic: 'CREATE', deleteTopicOnDelete: true } },
      },
    });
    const apps = env.kubeConfig.makeApiClient(AppsV1Api);
    const deadline = Date.now() + 30_000;
    let ready = false;
    while (Date.now() < deadline && !ready) {
      const ms = (await custom.getNamespacedCustomObject({
        group: 'modelship.dev',
        version: 'v1alpha1',
        namespace: target,
        plural: 'modelservings',
        name: 'rbac',
      })) as ModelServing;
      ready = ms.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      if (!ready) await new Promise((r) => setTimeout(r, 250));
    }
    expect(ready).toBe(true);
    expect((await apps.readNamespacedDeployment({ name: 'rbac', namespace: target })).status?.readyReplicas).toBe(2);
    const events = JSON.parse(kubectl(['get', 'events', '-n', target, '-o', 'json'])).items.map((e: { reason: string }) => e.reason);
    expect(events).toContain('Created');
    expect(events).toContain('TopicCreated');

    // A BatchPrediction, with the same RBAC: its plan Job made, its pod run by kwok (which ends Job pods at once,
    // without the report a real planner writes), its status written.
    batchController = new BatchPredictionController(
      kc,
      { ...DEFAULT_CONFIG, namespaces: [target], workers: 1 },
      log,
      new OperatorMetrics({ processMetrics: false }),
    );
    await batchController.start();
    kubectl(
      ['apply', '-n', target, '-f', '-'],
      JSON.stringify({
        apiVersion: 'modelship.dev/v1alpha1',
        kind: 'BatchPrediction',
        metadata: { name: 'rbac-batch' },
        spec: { model: { modelServing: 'rbac' }, input: { uri: 's3://bkt/in/' }, output: { uri: 's3://bkt/out' } },
      }),
    );
    const planned = await eventually(async () => {
      const bp = JSON.parse(kubectl(['get', 'bp', 'rbac-batch', '-n', target, '-o', 'json'])) as BatchPrediction;
      return bp.status?.conditions?.find((c) => c.type === 'Planned' && c.reason === 'PlanReportMissing') ? bp : undefined;
    }, 'the plan Job run and its outcome in the status');
    expect(planned.status?.phase).toBe('Failed');
    const planJob = JSON.parse(kubectl(['get', 'job', 'rbac-batch-plan', '-n', target, '-o', 'json']));
    expect(planJob.metadata.ownerReferences[0]).toMatchObject({ kind: 'BatchPrediction', name: 'rbac-batch', uid: planned.metadata.uid });

    // The finalizer (a patch the chart's RBAC allows) deletes the created topic with the ModelServing.
    const topic = `modelship.${target}.rbac.inference`;
    expect((await env.kafkaAdmin().listTopics()).includes(topic)).toBe(true);
    const models = env.modelServings(target);
    await models.delete('rbac');
    await eventually(
      async () => (await models.gone('rbac')) && !(await env.kafkaAdmin().listTopics()).includes(topic),
      'the ModelServing and its topic gone',
      30_000,
    );
  });

  it('with watchNamespaces, grants Roles in those namespaces only, and the operator reconciles there with them', async () => {
    const scopedSystem = await env.namespace('ms-scoped');
    const watched = await env.namespace('scoped-models');
    const other = await env.namespace('scoped-other');
    const rendered = helm([
      'template',
      'scoped',
      CHART,
      '-n',
      scopedSystem,
      '--kube-version',
      serverVersion,
      '--set-json',
      `watchNamespaces=${JSON.stringify([watched])}`,
    ]);
    const all = parseAllDocuments(rendered).map((d) => d.toJS());
    const docs = all.filter((d) => RBAC_KINDS.includes(d?.kind));
    // Cluster-wide, only spec.auth's: the one binding of the auth ServiceAccounts and the operator's right to patch
    // it and bind system:auth-delegator (none with auth.kubernetes=false).
    expect(
      docs
        .filter((d) => d.kind.startsWith('Cluster'))
        .map((d) => `${d.kind}/${d.metadata.name}`)
        .sort(),
    ).toEqual([
      'ClusterRole/scoped-operator-auth-admin',
      'ClusterRoleBinding/scoped-operator-auth-admin',
      'ClusterRoleBinding/scoped-operator-runtime-auth',
    ]);
    const withoutAuth = parseAllDocuments(
      helm(['template', 'scoped', CHART, '-n', scopedSystem, '--kube-version', serverVersion, '--set', 'auth.kubernetes=false']),
    ).map((d) => d.toJS());
    expect(withoutAuth.filter((d) => d?.kind?.startsWith('Cluster') && d.metadata.name.includes('auth'))).toEqual([]);
    kubectl(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
    const deployment = all.find((d) => d?.kind === 'Deployment');
    expect(deployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'MODELSHIP_WATCH_NAMESPACES', value: watched });

    const can = (...args: string[]) => canI(scopedSystem, 'scoped-operator', args);
    expect(can('patch', 'deployments', '-n', watched)).toBe('yes');
    expect(can('watch', 'modelservings.modelship.dev', '-n', watched)).toBe('yes');
    expect(can('list', 'deployments', '-A')).toBe('no');
    expect(can('patch', 'deployments', '-n', other)).toBe('no');
    expect(can('get', 'secrets', '-n', watched)).toBe('no');

    // The operator, as that ServiceAccount and configured like the chart's Deployment, watches per namespace.
    const kc = tokenKubeConfig('scoped-operator', scopedSystem);
    const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const scoped = new ModelServingController(
      kc,
      { ...DEFAULT_CONFIG, namespaces: [watched], workers: 1 },
      log,
      new OperatorMetrics({ processMetrics: false }),
    );
    try {
      await scoped.start();
      const models = env.modelServings(watched);
      const elsewhere = env.modelServings(other);
      await models.create('scoped', { bundle: { uri: 's3://b/k.zip' }, replicas: 1 });
      await elsewhere.create('ignored', { bundle: { uri: 's3://b/k.zip' }, replicas: 1 });
      const ready = await eventually(async () => {
        const m = await models.get('scoped');
        return m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? m : undefined;
      }, 'the watched ModelServing Ready');
      expect(ready.status?.readyReplicas).toBe(1);
      expect((await elsewhere.get('ignored')).status).toBeUndefined();
    } finally {
      await scoped.stop();
    }
  });
});
