// Two operator processes share one Lease: only the leader runs the controller; when the leader dies the
// other takes over within the lease duration; a leader stopped with SIGTERM hands over at once.
import { type ChildProcess, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { eventually } from '../../env/wait.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestEnv } from '../env/fixtures.ts';

const env = useTestEnv();
const coordination = env.kubeConfig.makeApiClient(CoordinationV1Api);
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
const MAIN = join(import.meta.dirname, '../../operator/main.ts');
let ns: string;
const children: ChildProcess[] = [];

const _kubectl = (...args: string[]) => env.kubectl(args);

function operator(): { child: ChildProcess; identity: string; output: () => string } {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      KUBECONFIG: env.info.kubeconfig,
      MODELSHIP_LEASE_NAMESPACE: ns,
      MODELSHIP_WATCH_NAMESPACES: ns,
      MODELSHIP_OPERATOR_METRICS_PORT: '0',
      MODELSHIP_OPERATOR_BIND: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c) => (out += c));
  child.stderr?.on('data', (c) => (out += c));
  children.push(child);
  return { child, identity: `${hostname()}-${child.pid}`, output: () => out };
}

async function holder(): Promise<string | undefined> {
  try {
    const lease = await coordination.readNamespacedLease({ name: 'modelship-operator', namespace: ns });
    return lease.spec?.holderIdentity || undefined;
  } catch {
    return undefined;
  }
}

function msYaml(name: string) {
  return JSON.stringify({
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name, namespace: ns },
    spec: { bundle: { uri: 's3://b/k.zip' } },
  });
}

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('leader');
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('leader election', () => {
  it('runs the controller only in the leader, fails over after a crash in < 20 s, and hands over on SIGTERM', async () => {
    const a = operator();
    await eventually(async () => (await holder()) === a.identity, 'A to lead', 20_000);
    const b = operator();
    await eventually(async () => a.output().includes('workers started'), 'A to start its workers', 20_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await holder()).toBe(a.identity);
    expect(b.output()).not.toContain('workers started');

    env.kubectl(['apply', '-f', '-'], msYaml('one'));
    await eventually(() => apps.readNamespacedDeployment({ name: 'one', namespace: ns }), 'A to reconcile', 20_000);

    // Crash: the lease expires (15 s) and B takes it.
    const crashedAt = Date.now();
    a.child.kill('SIGKILL');
    await eventually(async () => (await holder()) === b.identity, 'B to take over', 25_000);
    const takeover = Date.now() - crashedAt;
    expect(takeover).toBeLessThan(20_000);
    await eventually(async () => b.output().includes('workers started'), 'B to start its workers', 20_000);
    env.kubectl(['apply', '-f', '-'], msYaml('two'));
    await eventually(() => apps.readNamespacedDeployment({ name: 'two', namespace: ns }), 'B to reconcile', 20_000);

    // Graceful stop: B releases the lease, C takes it within a couple of retry periods.
    const c = operator();
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise<number | null>((r) => b.child.on('exit', r));
    const stoppedAt = Date.now();
    b.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await eventually(async () => (await holder()) === c.identity, 'C to take over', 10_000);
    expect(Date.now() - stoppedAt).toBeLessThan(6000);
  }, 120_000);
});
