// The informer wrapper against the real API server: not synced while the list is refused, synced once allowed.
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { startInformer } from '../../operator/kube/informer.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();

it('is not synced while the API server refuses its list or its watch, and syncs once both are allowed', async () => {
  const ns = await env.namespace('informer');
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'c1' }, data: { a: '1' } } });
  // The same cluster, no credentials: the API server takes the requests as system:anonymous, whom RBAC
  // grants nothing — as an operator whose Role is not applied yet.
  const cluster = env.kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('no cluster in the test kubeconfig');
  const anonymous = new KubeConfig();
  anonymous.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'anonymous' }],
    contexts: [{ name: 'anonymous', cluster: cluster.name, user: 'anonymous' }],
    currentContext: 'anonymous',
  });
  const anonymousCore = anonymous.makeApiClient(CoreV1Api);
  let refusals = 0;
  const informer = startInformer<V1ConfigMap>({
    kubeConfig: anonymous,
    name: 'configmaps',
    path: `/api/v1/namespaces/${ns}/configmaps`,
    list: () => anonymousCore.listNamespacedConfigMap({ namespace: ns }),
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    onError: () => refusals++,
  });
  try {
    let synced = false;
    void informer.synced.then(() => (synced = true));
    await eventually(async () => refusals >= 1, 'a refused list');
    await new Promise((r) => setTimeout(r, 1500));
    expect(synced).toBe(false);
    expect(informer.cache.list()).toEqual([]);

    const rbac = env.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    // List allowed, watch not: the list succeeds, the watch is refused — still not synced.
    await rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: 'read' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'read' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:anonymous' }],
      },
    });
    const listable = refusals;
    await eventually(async () => refusals > listable + 1, 'refused watches', 45_000);
    expect(synced).toBe(false);
    await rbac.replaceNamespacedRole({
      name: 'read',
      namespace: ns,
      body: { metadata: { name: 'read' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }] },
    });
    await eventually(async () => synced, 'synced once allowed', 45_000);
    expect(informer.cache.list().map((c) => c.metadata?.name)).toContain('c1');
  } finally {
    await informer.stop();
  }
});
