// reconcileBatch() with in-memory caches and a recording writer: which Job it makes when, that it makes each once,
// and what it does with a stranger's Job or a missing ModelServing.
import type { KubernetesObject, ObjectCache, V1Job, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { BatchPrediction, BatchPredictionStatus } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../../../operator/config.ts';
import { reconcileBatch } from '../../../operator/controller/batch/reconcile.ts';
import type { Writer } from '../../../operator/kube/apply.ts';
import { TerminalError } from '../../../operator/kube/errors.ts';
import { batch, modelServing } from './fixtures.ts';

function cache<T extends KubernetesObject>(items: T[] = []): ObjectCache<T> {
  return {
    get: (name: string, namespace?: string) => items.find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace),
    list: (namespace?: string) => items.filter((o) => namespace === undefined || o.metadata?.namespace === namespace),
  };
}

function recorder(opts: { conflict?: boolean; existing?: KubernetesObject } = {}) {
  const applied: KubernetesObject[] = [];
  const statuses: BatchPredictionStatus[] = [];
  const writer: Writer<BatchPredictionStatus> = {
    read: async () => opts.existing,
    apply: async (obj) => {
      if (opts.conflict) throw Object.assign(new Error('conflict'), { code: 409 });
      applied.push(obj);
    },
    remove: async () => {},
    applyStatus: async (_ns, _name, status) => void statuses.push(status),
    applyFinalizers: async () => {},
  };
  return { writer, applied, statuses };
}

const log = pino({ level: 'silent' });
const NOW = '2026-12-01T10:01:00Z';
const owner = [{ apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', name: 'score', uid: 'bp-uid', controller: true }];

function run(world: { bp?: BatchPrediction; ms?: ModelServing[]; jobs?: V1Job[]; pods?: V1Pod[] }, writer: Writer<BatchPredictionStatus>) {
  return reconcileBatch('ml/score', {
    caches: {
      batchPredictions: cache([(world.bp ?? batch()) as BatchPrediction & KubernetesObject]),
      modelServings: cache((world.ms ?? [modelServing()]) as (ModelServing & KubernetesObject)[]),
      jobs: cache(world.jobs ?? []),
      pods: cache(world.pods ?? []),
    },
    writer,
    config: DEFAULT_CONFIG,
    log,
    now: () => NOW,
  });
}

const planJob: V1Job = {
  metadata: { name: 'score-plan', namespace: 'ml', uid: 'plan-uid', ownerReferences: owner },
  status: { startTime: new Date('2026-12-01T10:00:00Z'), conditions: [{ type: 'Complete', status: 'True' }] },
};
const planPod: V1Pod = {
  metadata: {
    name: 'score-plan-x',
    namespace: 'ml',
    labels: { 'modelship.dev/batch': 'score' },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'score-plan', uid: 'plan-uid', controller: true }],
  },
  status: {
    phase: 'Succeeded',
    containerStatuses: [
      {
        name: 'plan',
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode: 0, message: '{"shards":3,"rows":900,"files":1}\n' } },
      },
    ],
  },
};

describe('reconcileBatch', () => {
  it('creates the plan Job (without force), then waits for the informers', async () => {
    const r = recorder();
    expect(await run({}, r.writer)).toEqual({ requeueAfterMs: 5000 });
    expect(r.applied.map((o) => `${o.kind} ${o.metadata?.name}`)).toEqual(['Job score-plan']);
    expect(r.statuses).toEqual([]);
  });

  it('waits for a missing ModelServing: no Job, status Pending ModelServingNotFound', async () => {
    const r = recorder();
    expect(await run({ ms: [] }, r.writer)).toEqual({});
    expect(r.applied).toEqual([]);
    expect(r.statuses[0]).toMatchObject({ phase: 'Pending' });
    expect(r.statuses[0]?.conditions?.find((c) => c.type === 'Complete')?.reason).toBe('ModelServingNotFound');
  });

  it("creates the shard Job from the plan's report, what is left of the deadline with it", async () => {
    const r = recorder();
    await run({ bp: batch({ activeDeadlineSeconds: 600 }), jobs: [planJob], pods: [planPod] }, r.writer);
    const job = r.applied[0] as V1Job;
    expect(job.metadata?.name).toBe('score');
    expect(job.spec).toMatchObject({ completions: 3, parallelism: 2, activeDeadlineSeconds: 540 });
  });

  it('makes each Job once: with both there, it only writes the status', async () => {
    const r = recorder();
    const shardJob: V1Job = {
      metadata: { name: 'score', namespace: 'ml', uid: 'shard-uid', ownerReferences: owner },
      status: { active: 2 },
    };
    expect(await run({ jobs: [planJob, shardJob], pods: [planPod] }, r.writer)).toEqual({});
    expect(r.applied).toEqual([]);
    expect(r.statuses[0]).toMatchObject({ phase: 'Running', rows: { total: 900, done: 0 }, shards: { total: 3, running: 2 } });
  });

  it("refuses a stranger's Job under its name: status Failed Conflict, then a TerminalError (no retry)", async () => {
    const r = recorder({
      conflict: true,
      existing: { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'score-plan', namespace: 'ml' } },
    });
    const err = await run({}, r.writer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect(r.statuses[0]?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({
      status: 'True',
      reason: 'Conflict',
      message: 'Job ml/score-plan exists and is not owned by this BatchPrediction',
    });
  });

  it('does nothing for a run that finished', async () => {
    const r = recorder();
    const done = batch({}, { phase: 'Succeeded', completionTime: '2026-12-01T10:00:30Z' });
    expect(await run({ bp: done }, r.writer)).toEqual({});
    expect([...r.applied, ...r.statuses]).toEqual([]);
  });
});
