// Proves the environment is real: the control plane schedules, garbage-collects and autoscales; MinIO and
// Kafka round-trip data through the same clients the project uses.
import { execFileSync } from 'node:child_process';
import { AppsV1Api, AutoscalingV2Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { eventually } from '../../env/wait.ts';
import { describe, expect, it } from 'vitest';
import { useTestEnv } from './fixtures.ts';
import { status } from '../../env/env.ts';
import { fromNode } from '../../env/on-node.ts';
import { minioClientFor } from '../../runtime/bundle/fetch.ts';

const env = useTestEnv();
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const hpa = env.kubeConfig.makeApiClient(AutoscalingV2Api);

function deployment(name: string, replicas: number): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: 'app', image: 'example.invalid/app:1', resources: { requests: { cpu: '100m', memory: '64Mi' } } }],
        },
      },
    },
  };
}

describe('local environment', () => {
  it('reports every component healthy, with the pinned Kubernetes version', async () => {
    const rows = await status(env.info);
    expect(rows.map((r) => r.name).sort()).toEqual(
      [
        'etcd',
        'kafka',
        'kube-apiserver',
        'kube-controller-manager',
        'kube-scheduler',
        'kwok',
        'minio',
        'process-node',
        'pypi-proxy',
        'python',
        'relay-host',
        'relay-node',
        'containerd',
        'kubelet',
        'kube-proxy',
      ].sort(),
    );
    for (const r of rows) expect(r, r.name).toMatchObject({ healthy: true });
    const version = execFileSync(env.info.binaries.kubectl, ['--kubeconfig', env.info.kubeconfig, 'version', '-o', 'json'], {
      encoding: 'utf8',
    });
    expect(JSON.parse(version).serverVersion.gitVersion).toBe(env.info.kubernetesVersion);
  });

  it("keeps the real node's networking to its own ranges: no default route, nothing forwarded out", () => {
    const node = env.info.realNode;
    expect(node).toBeDefined();
    const inNode = (...args: string[]) => execFileSync('nsenter', [`--net=/run/netns/${node?.netns}`, '--', ...args], { encoding: 'utf8' });
    const routes = inNode('ip', 'route', 'show');
    expect(routes).not.toMatch(/^default/m);
    expect(routes).toContain('10.250.0.0/30 dev eth0');
    // The kernel answers this from the routing table: no packet is sent anywhere.
    expect(() => inNode('ip', 'route', 'get', '192.0.2.1')).toThrow(/unreachable/i);
    // The root namespace: the veth's host end with the node's two ranges, and the chain that drops forwarding.
    expect(execFileSync('ip', ['route', 'show', 'dev', 'ms-node0'], { encoding: 'utf8' })).toMatch(/10\.246\.0\.0\/24 via 10\.250\.0\.2/);
    expect(execFileSync('iptables', ['-w', '-S', 'MODELSHIP-NODE-FWD'], { encoding: 'utf8' })).toContain('-A MODELSHIP-NODE-FWD -j DROP');
    expect(execFileSync('iptables', ['-w', '-S', 'FORWARD'], { encoding: 'utf8' })).toContain(
      '-A FORWARD -i ms-node0 -j MODELSHIP-NODE-FWD',
    );
    // kube-proxy's rules live in the node's namespace only.
    expect(inNode('iptables', '-w', '-t', 'nat', '-S')).toContain('KUBE-SERVICES');
    expect(execFileSync('iptables', ['-w', '-t', 'nat', '-S'], { encoding: 'utf8' })).not.toContain('KUBE-SERVICES');
  });

  it("behaves like a user's cluster: a pod that asks for nothing runs on the real node; kwok nodes only for the tests", async () => {
    const pod = (name: string) => ({
      metadata: { name },
      spec: {
        containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.10', imagePullPolicy: 'Never' as const }],
        terminationGracePeriodSeconds: 0,
      },
    });
    const plain = await env.namespace('env-plain', { nodes: 'any' });
    await core.createNamespacedPod({ namespace: plain, body: pod('anywhere') });
    const running = await eventually(async () => {
      const p = await core.readNamespacedPod({ namespace: plain, name: 'anywhere' });
      return p.status?.phase === 'Running' ? p : undefined;
    }, 'the pod Running');
    expect(running.spec?.nodeName).toBe(env.info.realNode?.name);
    const tests = await env.namespace('env-fake');
    await core.createNamespacedPod({ namespace: tests, body: pod('faked') });
    const faked = await eventually(
      async () => (await core.readNamespacedPod({ namespace: tests, name: 'faked' })).spec?.nodeName,
      'scheduled',
    );
    expect(env.info.nodes).toContain(faked);
  });

  it('serves MinIO, Kafka and the package index proxy at stable Service names, reachable from the node', async () => {
    const service = async (name: string) => (await core.readNamespacedService({ namespace: name, name })).spec;
    const minio = await service('minio');
    expect(minio?.ports?.[0]?.port).toBe(9000);
    expect((await service('kafka'))?.ports?.[0]?.port).toBe(9092);
    const pypi = await service('pypi');
    expect(env.info.realNode?.s3Endpoint).toBe('http://minio.minio.svc:9000');
    expect(env.info.realNode?.kafkaBootstrap).toBe('kafka.kafka.svc:9092');
    expect(env.info.realNode?.pythonIndexUrl).toBe('http://pypi.pypi.svc/root/pypi/+simple/');
    // From the node, through kube-proxy's rules for those Services, to the machine's loopback and back.
    const health = await fromNode(env.info, `http://${minio?.clusterIP}:9000/minio/health/ready`);
    expect(health.status).toBe(200);
    const index = await fromNode(env.info, `http://${pypi?.clusterIP}/root/pypi/+simple/`);
    expect(index.status).toBe(200);
  });

  it('schedules a 2-replica Deployment onto kwok nodes and its pods run', async () => {
    const ns = await env.namespace('env-deploy');
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', 2) });
    const pods = await eventually(
      async () => {
        const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
        const running = list.items.filter((p) => p.status?.phase === 'Running');
        return running.length === 2 ? running : undefined;
      },
      '2 Running pods',
      60_000,
    );
    for (const p of pods) expect(env.info.nodes).toContain(p.spec?.nodeName);
    const dep = await eventually(
      async () => {
        const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
        return d.status?.readyReplicas === 2 ? d : undefined;
      },
      'readyReplicas 2',
      60_000,
    );
    expect(dep.status?.availableReplicas).toBe(2);
  });

  it('garbage-collects dependents when their owner is deleted', async () => {
    const ns = await env.namespace('env-gc');
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '', blockOwnerDeletion: true },
          ],
        },
      },
    });
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('gc', 1) });
    await eventually(async () => (await apps.listNamespacedReplicaSet({ namespace: ns })).items.length === 1, 'a ReplicaSet', 30_000);

    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns });
    await apps.deleteNamespacedDeployment({ name: 'gc', namespace: ns, body: { propagationPolicy: 'Background' } });
    await eventually(
      async () => {
        const cms = await core.listNamespacedConfigMap({ namespace: ns });
        return !cms.items.some((c) => c.metadata?.name === 'dependent');
      },
      'the dependent ConfigMap to be collected',
      60_000,
    );
    await eventually(
      async () => {
        const [rs, pods] = await Promise.all([apps.listNamespacedReplicaSet({ namespace: ns }), core.listNamespacedPod({ namespace: ns })]);
        return rs.items.length === 0 && pods.items.length === 0;
      },
      'the ReplicaSet and pods to be collected',
      60_000,
    );
  });

  it('accepts an HPA and the controller gives it a status', async () => {
    const ns = await env.namespace('env-hpa');
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('scaled', 1) });
    await hpa.createNamespacedHorizontalPodAutoscaler({
      namespace: ns,
      body: {
        metadata: { name: 'scaled' },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'scaled' },
          minReplicas: 1,
          maxReplicas: 3,
          metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
        },
      },
    });
    const got = await eventually(
      async () => {
        const h = await hpa.readNamespacedHorizontalPodAutoscaler({ name: 'scaled', namespace: ns });
        return (h.status?.conditions?.length ?? 0) > 0 ? h : undefined;
      },
      'HPA conditions from the controller',
      60_000,
    );
    const types = got.status?.conditions?.map((c) => c.type) ?? [];
    expect(types).toContain('AbleToScale');
    expect(got.status?.currentReplicas).toBe(1);
  });

  it('round-trips an object through MinIO', async () => {
    const bucket = await env.bucket('env-s3');
    const body = Buffer.from(`hello from modelship ${Date.now()}`);
    await env.minio().putObject(bucket, 'dir/hello.txt', body, body.length, { 'Content-Type': 'text/plain' });
    const stat = await env.minio().statObject(bucket, 'dir/hello.txt');
    expect(stat.size).toBe(body.length);
    const chunks: Buffer[] = [];
    for await (const c of await env.minio().getObject(bucket, 'dir/hello.txt')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it("has a read-only MinIO user for pods: it reads any bucket's objects and writes none", async () => {
    const bucket = await env.bucket('env-ro');
    const body = Buffer.from('a bundle');
    await env.minio().putObject(bucket, 'b.zip', body, body.length);
    const ro = env.info.s3.readOnly;
    expect(ro?.accessKey).toBe('modelship-pods');
    const reader = minioClientFor({ ...env.info.s3, accessKey: ro?.accessKey, secretKey: ro?.secretKey });
    const chunks: Buffer[] = [];
    for await (const c of await reader.getObject(bucket, 'b.zip')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    await expect(reader.putObject(bucket, 'b.zip', Buffer.from('planted'), 7)).rejects.toMatchObject({ code: 'AccessDenied' });
    await expect(reader.removeObject(bucket, 'b.zip')).rejects.toMatchObject({ code: 'AccessDenied' });
  });

  it('round-trips a message through Kafka', async () => {
    const topic = await env.topic('env.kafka');
    const producer = new Producer({
      clientId: 'env-test-producer',
      bootstrapBrokers: env.info.kafka.bootstrapServers,
      serializers: stringSerializers,
    });
    const value = JSON.stringify({ hello: 'kafka', at: Date.now() });
    await producer.send({ messages: [{ topic, key: 'k1', value }] });
    await producer.close();

    const consumer = new Consumer({
      groupId: `env-test-${Date.now()}`,
      clientId: 'env-test-consumer',
      bootstrapBrokers: env.info.kafka.bootstrapServers,
      deserializers: stringDeserializers,
    });
    try {
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      const received = await new Promise<{ key: string; value: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 30 s')), 30_000);
        stream.once('data', (m) => {
          clearTimeout(timer);
          resolve({ key: m.key as string, value: m.value as string });
        });
      });
      expect(received).toEqual({ key: 'k1', value });
      await stream.close();
    } finally {
      await consumer.close(true);
    }
  });
});
