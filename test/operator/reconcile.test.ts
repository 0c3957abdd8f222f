// reconcile() with its dependencies injected: in-memory caches and a recording writer. What it writes, when
// it writes nothing, a stranger's object, and the status it reports (DependenciesReady among it).
import type { KubernetesObject, ObjectCache } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ModelServing, ModelServingStatus } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import type { Writer } from '../../operator/kube/apply.ts';
import { type Caches, reconcile, TerminalError } from '../../operator/controller/reconcile.ts';

function cache<T extends KubernetesObject>(items: T[] = []): ObjectCache<T> & { items: T[] } {
  return {
    items,
    get: (name: string, namespace?: string) => items.find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace),
    list: (namespace?: string) => items.filter((o) => namespace === undefined || o.metadata?.namespace === namespace),
  } as ObjectCache<T> & { items: T[] };
}

function ms(name: string, spec: Partial<ModelServing['spec']> = {}, status?: ModelServingStatus): ModelServing {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name, namespace: 'ml', uid: `uid-${name}`, generation: 1 },
    spec: { bundle: { uri: `s3://models/${name}.zip` }, replicas: 1, ...spec },
    ...(status ? { status } : {}),
  } as ModelServing;
}

function recorder(opts: { conflictOn?: string; stranger?: KubernetesObject } = {}) {
  const writes: string[] = [];
  const statuses: ModelServingStatus[] = [];
  const writer: Writer<ModelServingStatus> = {
    read: async () => opts.stranger,
    apply: async (obj, o) => {
      if (opts.conflictOn === obj.kind && o?.force === false) throw Object.assign(new Error('conflict'), { code: 409 });
      writes.push(`apply ${obj.kind}${o?.force === false ? ' (create)' : ''}`);
    },
    remove: async (obj) => {
      writes.push(`remove ${obj.kind}`);
    },
    applyStatus: async (_ns, _name, status) => {
      writes.push('status');
      statuses.push(status);
    },
    applyFinalizers: async (_ns, _name, f) => {
      writes.push(`finalizers ${f.join(',')}`);
    },
  };
  return { writer, writes, statuses };
}

const log = pino({ level: 'silent' });
const NOW = '2026-12-02T00:00:00Z';

function caches(all: ModelServing[]): Caches {
  return {
    modelServings: cache(all as (ModelServing & KubernetesObject)[]),
    deployments: cache(),
    services: cache(),
    hpas: cache(),
    pdbs: cache(),
    pods: cache(),
  };
}

describe('reconcile', () => {
  it('creates what is missing without force, then waits for the informers instead of writing a status', async () => {
    const r = recorder();
    const result = await reconcile('ml/iris', {
      caches: caches([ms('iris')]),
      writer: r.writer,
      config: DEFAULT_CONFIG,
      log,
      now: () => NOW,
    });
    expect(r.writes.sort()).toEqual(['apply Deployment (create)', 'apply Service (create)']);
    expect(result.requeueAfterMs).toBe(5000);
  });

  it("refuses a stranger's object of the same name: Ready=False Conflict, nothing overwritten, no retry", async () => {
    const stranger = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'iris', namespace: 'ml' } };
    const r = recorder({ conflictOn: 'Deployment', stranger });
    // The status says why, then the TerminalError tells the worker not to retry.
    const failed = await reconcile('ml/iris', {
      caches: caches([ms('iris')]),
      writer: r.writer,
      config: DEFAULT_CONFIG,
      log,
      now: () => NOW,
    }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(TerminalError);
    expect(r.writes).not.toContain('apply Deployment');
    const ready = r.statuses.at(-1)?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({
      status: 'False',
      reason: 'Conflict',
      message: 'Deployment ml/iris exists and is not owned by this ModelServing',
    });
  });

  it('writes nothing when what it would write is already there', async () => {
    const r = recorder();
    const c = caches([ms('iris')]);
    // First pass against a cluster that took the applies: capture what it applied into the caches.
    const applied: KubernetesObject[] = [];
    const first = { ...r.writer, apply: async (obj: KubernetesObject) => void applied.push(obj) };
    await reconcile('ml/iris', { caches: c, writer: first, config: DEFAULT_CONFIG, log, now: () => NOW });
    // What it applied carries its owner reference already, as the API server would keep it.
    const own = (o: KubernetesObject) => o as never;
    (c.deployments as ReturnType<typeof cache>).items.push(own(applied.find((o) => o.kind === 'Deployment') as KubernetesObject));
    (c.services as ReturnType<typeof cache>).items.push(own(applied.find((o) => o.kind === 'Service') as KubernetesObject));
    await reconcile('ml/iris', { caches: c, writer: r.writer, config: DEFAULT_CONFIG, log, now: () => NOW });
    expect(r.writes).toEqual(['status']);
    // The status it wrote, back in the cache: the next pass writes nothing at all.
    const m = (c.modelServings as unknown as { items: ModelServing[] }).items[0] as ModelServing;
    m.status = r.statuses[0] as ModelServingStatus;
    r.writes.length = 0;
    await reconcile('ml/iris', { caches: c, writer: r.writer, config: DEFAULT_CONFIG, log, now: () => '2026-12-03T00:00:00Z' });
    expect(r.writes).toEqual([]);
  });

  it('reports DependenciesReady from the members in the cache', async () => {
    const r = recorder();
    const c = caches([ms('ens', { dependencies: [{ name: 'svm', modelServing: 'svm' }] })]);
    const applied: KubernetesObject[] = [];
    await reconcile('ml/ens', {
      caches: c,
      writer: { ...r.writer, apply: async (o) => void applied.push(o) },
      config: DEFAULT_CONFIG,
      log,
      now: () => NOW,
    });
    // What it applied carries its owner reference already, as the API server would keep it.
    const own = (o: KubernetesObject) => o as never;
    for (const kind of ['Deployment', 'Service'] as const) {
      const cacheOf = kind === 'Deployment' ? c.deployments : c.services;
      (cacheOf as ReturnType<typeof cache>).items.push(own(applied.find((o) => o.kind === kind) as KubernetesObject));
    }
    await reconcile('ml/ens', { caches: c, writer: r.writer, config: DEFAULT_CONFIG, log, now: () => NOW });
    expect(r.statuses.at(-1)?.conditions?.find((x) => x.type === 'DependenciesReady')).toMatchObject({
      status: 'False',
      reason: 'DependencyMissing',
      message: 'svm: ModelServing svm not found',
    });
  });
});
