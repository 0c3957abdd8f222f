import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { BatchPredictionStatus } from '../../../crds/batchprediction.schema.ts';
import { type BatchObserved, computeBatchStatus, REPORT_GRACE_MS } from '../../../operator/controller/batch/status.ts';
import { batch } from './fixtures.ts';

const T0 = '2026-12-01T10:00:00Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');

function job(
  name: string,
  uid: string,
  status: { active?: number; completed?: string; failed?: string; complete?: number; failedAt?: number; reason?: string } = {},
): V1Job {
  const conditions = [
    ...(status.complete !== undefined ? [{ type: 'Complete', status: 'True', lastTransitionTime: new Date(at(status.complete)) }] : []),
    ...(status.failedAt !== undefined
      ? [
          {
            type: 'Failed',
            status: 'True',
            reason: status.reason ?? 'FailedIndexes',
            message: 'Job has failed indexes',
            lastTransitionTime: new Date(at(status.failedAt)),
          },
        ]
      : []),
  ];
  return {
    metadata: {
      name,
      namespace: 'ml',
      uid,
      ownerReferences: [{ apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', name: 'score', uid: 'bp-uid', controller: true }],
    },
    status: {
      startTime: new Date(T0),
      ...(status.active !== undefined ? { active: status.active } : {}),
      ...(status.completed ? { completedIndexes: status.completed } : {}),
      ...(status.failed ? { failedIndexes: status.failed } : {}),
      ...(status.complete !== undefined ? { completionTime: new Date(at(status.complete)) } : {}),
      conditions,
    },
  };
}

/** A pod of a Job: `container` ended with `exitCode` and `message` (a report), at `finished` seconds. */
function pod(
  jobUid: string,
  name: string,
  container: string,
  end: {
    phase: 'Succeeded' | 'Failed' | 'Running';
    exitCode?: number;
    message?: string;
    reason?: string;
    finished?: number;
    index?: number;
  },
): V1Pod {
  const terminated =
    end.phase === 'Running'
      ? undefined
      : {
          exitCode: end.exitCode ?? (end.phase === 'Succeeded' ? 0 : 1),
          message: end.message,
          reason: end.reason,
          finishedAt: new Date(at(end.finished ?? 0)),
        };
  return {
    metadata: {
      name,
      namespace: 'ml',
      labels: { 'modelship.dev/batch': 'score' },
      ...(end.index !== undefined ? { annotations: { 'batch.kubernetes.io/job-completion-index': String(end.index) } } : {}),
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'x', uid: jobUid, controller: true }],
    },
    status: {
      phase: end.phase,
      containerStatuses: [
        { name: container, image: 'x', imageID: '', ready: false, restartCount: 0, state: terminated ? { terminated } : { running: {} } },
      ],
    },
  };
}

const planDone = (rows = 1000, shards = 4, files = 2) =>
  [
    job('score-plan', 'plan-uid', { complete: 5 }),
    pod('plan-uid', 'score-plan-x', 'plan', { phase: 'Succeeded', message: JSON.stringify({ shards, rows, files }), finished: 5 }),
  ] as const;
const shardPod = (index: number, rows: number, opts: { errorRows?: number; finished?: number; skipped?: boolean } = {}) =>
  pod('shard-uid', `score-${index}-a`, 'driver', {
    phase: 'Succeeded',
    index,
    finished: opts.finished ?? 20,
    message: JSON.stringify({ shard: index, rows, errorRows: opts.errorRows ?? 0, seconds: 3, ...(opts.skipped ? { skipped: true } : {}) }),
  });

function observe(parts: Partial<BatchObserved> & { jobs?: V1Job[] }): BatchObserved {
  const jobs = parts.jobs ?? [];
  return {
    bp: parts.bp ?? batch(),
    planJob: parts.planJob ?? jobs.find((j) => j.metadata?.name === 'score-plan'),
    shardJob: parts.shardJob ?? jobs.find((j) => j.metadata?.name === 'score'),
    pods: parts.pods ?? [],
    modelMissing: parts.modelMissing ?? false,
    applyError: parts.applyError,
    now: parts.now ?? at(30),
  };
}
const cond = (s: BatchPredictionStatus, type: string) => s.conditions?.find((c) => c.type === type);
const [plan, planPod] = planDone();

describe('computeBatchStatus', () => {
  it.each<[string, BatchObserved, Partial<BatchPredictionStatus>, Record<string, [string, string]>]>([
    [
      'no plan Job yet: Pending',
      observe({}),
      { phase: 'Pending', outputUri: 's3://out/scored', errorsUri: 's3://out/scored/errors/' },
      { Planned: ['Unknown', 'Pending'], Complete: ['False', 'Pending'], Failed: ['False', 'AsExpected'] },
    ],
    [
      'the plan running: Planning, from its start',
      observe({ jobs: [job('score-plan', 'plan-uid', { active: 1 })] }),
      { phase: 'Planning', startTime: T0 },
      { Planned: ['Unknown', 'Planning'], Complete: ['False', 'Planning'] },
    ],
    [
      'the plan done: Running, the totals from its report',
      observe({ jobs: [plan], pods: [planPod] }),
      {
        phase: 'Running',
        rows: { total: 1000, done: 0, failed: 0 },
        shards: { total: 4, succeeded: 0, failed: 0, running: 0, skipped: 0 },
      },
      { Planned: ['True', 'Planned'], Complete: ['False', 'Running'] },
    ],
    [
      "shards under way: rows of the succeeded ones, refused rows, skipped ones, the rate of this run's rows to the latest finish",
      observe({
        jobs: [plan, job('score', 'shard-uid', { active: 1, completed: '0,2' })],
        pods: [planPod, shardPod(0, 250, { errorRows: 3, finished: 10 }), shardPod(2, 250, { skipped: true, finished: 20 })],
      }),
      {
        phase: 'Running',
        rows: { total: 1000, done: 500, failed: 3 },
        shards: { total: 4, succeeded: 2, failed: 0, running: 1, skipped: 1 },
        // this run's rows only (250 scored + 3 refused; the skipped shard's were an earlier run's), over 20 s
        rowsPerSecond: 13,
      },
      { Complete: ['False', 'Running'] },
    ],
    [
      "all shards done: Succeeded at the Job's completion",
      observe({
        jobs: [plan, job('score', 'shard-uid', { completed: '0-3', complete: 40 })],
        pods: [planPod, ...[0, 1, 2, 3].map((i) => shardPod(i, 250, { finished: 40 }))],
        now: at(41),
      }),
      { phase: 'Succeeded', completionTime: at(40), rows: { total: 1000, done: 1000, failed: 0 }, rowsPerSecond: 25 },
      { Complete: ['True', 'Succeeded'], Failed: ['False', 'AsExpected'] },
    ],
    [
      'a shard failed for good: Failed with its coded reason, the others counted',
      observe({
        jobs: [plan, job('score', 'shard-uid', { completed: '0-2', failed: '3', failedAt: 50 })],
        pods: [
          planPod,
          ...[0, 1, 2].map((i) => shardPod(i, 250)),
          pod('shard-uid', 'score-3-a', 'driver', {
            phase: 'Failed',
            index: 3,
            exitCode: 3,
            finished: 49,
            message: JSON.stringify({
              shard: 3,
              rows: 0,
              errorRows: 0,
              seconds: 1,
              code: 'MS_ERR_BATCH_INPUT_FORMAT',
              message: 'input file c.csv cannot be read as csv: line 4',
            }),
          }),
        ],
        now: at(51),
      }),
      {
        phase: 'Failed',
        completionTime: at(50),
        rows: { total: 1000, done: 750, failed: 0 },
        shards: { total: 4, succeeded: 3, failed: 1, running: 0, skipped: 0 },
        failedShards: [{ index: 3, code: 'MS_ERR_BATCH_INPUT_FORMAT', message: 'input file c.csv cannot be read as csv: line 4' }],
      },
      { Failed: ['True', 'MS_ERR_BATCH_INPUT_FORMAT'], Complete: ['False', 'MS_ERR_BATCH_INPUT_FORMAT'] },
    ],
    [
      "a shard killed for its memory: the container's reason, from its last pod",
      observe({
        jobs: [plan, job('score', 'shard-uid', { completed: '1-3', failed: '0', failedAt: 50 })],
        pods: [
          planPod,
          ...[1, 2, 3].map((i) => shardPod(i, 250)),
          pod('shard-uid', 'score-0-a', 'driver', {
            phase: 'Failed',
            index: 0,
            exitCode: 1,
            finished: 20,
            message: 'MS_ERR_BATCH_STORAGE: object store down',
          }),
          pod('shard-uid', 'score-0-b', 'driver', { phase: 'Failed', index: 0, exitCode: 137, reason: 'OOMKilled', finished: 45 }),
        ],
        now: at(51),
      }),
      {
        phase: 'Failed',
        completionTime: at(50),
        failedShards: [{ index: 0, code: 'OOMKilled', message: 'the driver container exited with code 137 (OOMKilled)' }],
      },
      { Failed: ['True', 'OOMKilled'] },
    ],
    [
      "the plan failed on its input: Failed with the plan report's code, for good",
      observe({
        jobs: [job('score-plan', 'plan-uid', { failedAt: 8, reason: 'PodFailurePolicy' })],
        pods: [
          pod('plan-uid', 'score-plan-x', 'plan', {
            phase: 'Failed',
            exitCode: 3,
            finished: 8,
            message: JSON.stringify({
              shards: 0,
              rows: 0,
              files: 0,
              code: 'MS_ERR_BATCH_INPUT_NOT_FOUND',
              message: 'no input file matches s3://data/iris/',
            }),
          }),
        ],
      }),
      { phase: 'Failed', completionTime: at(8) },
      { Planned: ['False', 'MS_ERR_BATCH_INPUT_NOT_FOUND'], Failed: ['True', 'MS_ERR_BATCH_INPUT_NOT_FOUND'] },
    ],
    [
      'the plan past the deadline: DeadlineExceeded, not the exit of the pod it stopped',
      observe({
        jobs: [job('score-plan', 'plan-uid', { failedAt: 8, reason: 'DeadlineExceeded' })],
        pods: [pod('plan-uid', 'score-plan-x', 'plan', { phase: 'Failed', exitCode: 143, finished: 8 })],
      }),
      { phase: 'Failed', completionTime: at(8) },
      { Failed: ['True', 'DeadlineExceeded'] },
    ],
    [
      'the plan pod succeeded without a report: Failed, PlanReportMissing',
      observe({
        jobs: [job('score-plan', 'plan-uid', { complete: 5 })],
        pods: [pod('plan-uid', 'p', 'plan', { phase: 'Succeeded', finished: 5 })],
      }),
      { phase: 'Failed', completionTime: at(5) },
      { Failed: ['True', 'PlanReportMissing'] },
    ],
    [
      'an empty input: Succeeded with nothing to do',
      observe({ jobs: [job('score-plan', 'plan-uid', { complete: 5 })], pods: [planDone(0, 0, 1)[1]] }),
      { phase: 'Succeeded', rows: { total: 0, done: 0, failed: 0 }, completionTime: at(5) },
      { Complete: ['True', 'Succeeded'] },
    ],
    [
      'the ModelServing missing: Pending, with the reason (no completionTime)',
      observe({ modelMissing: true }),
      { phase: 'Pending' },
      { Complete: ['False', 'ModelServingNotFound'], Failed: ['False', 'AsExpected'], Planned: ['Unknown', 'Pending'] },
    ],
    [
      'the ModelServing missing once the shards run: of no matter',
      observe({ modelMissing: true, jobs: [plan, job('score', 'shard-uid', { active: 2 })], pods: [planPod] }),
      { phase: 'Running' },
      { Failed: ['False', 'AsExpected'] },
    ],
    [
      "a stranger's Job under the name: Failed, Conflict",
      observe({ applyError: { reason: 'Conflict', message: 'Job ml/score-plan exists and is not owned by this BatchPrediction' } }),
      { phase: 'Failed' },
      { Failed: ['True', 'Conflict'] },
    ],
    [
      'a write that failed and will be retried: the phase stays, Complete says why',
      observe({ applyError: { reason: 'ApplyFailed', message: 'etcd timeout' } }),
      { phase: 'Pending' },
      { Complete: ['False', 'ApplyFailed'], Failed: ['False', 'AsExpected'] },
    ],
  ])('%s', (_what, observed, want, conditions) => {
    const { status } = computeBatchStatus(observed);
    expect(status).toMatchObject(want);
    if (!('completionTime' in want)) expect(status.completionTime).toBeUndefined();
    for (const [type, [s, reason]] of Object.entries(conditions)) expect(cond(status, type), type).toMatchObject({ status: s, reason });
  });

  it('waits for the last reports after the Job completed (a recheck, still Running), then takes what there is', () => {
    const jobs = [plan, job('score', 'shard-uid', { completed: '0-3', complete: 40 })];
    const pods = [planPod, ...[0, 1, 2].map((i) => shardPod(i, 250))];
    const early = computeBatchStatus(observe({ jobs, pods, now: at(41) }));
    expect(early.status.phase).toBe('Running');
    expect(early.recheckAfterMs).toBeGreaterThan(0);
    const late = computeBatchStatus(observe({ jobs, pods, now: at(40 + REPORT_GRACE_MS / 1000) }));
    expect(late.status).toMatchObject({ phase: 'Succeeded', rows: { done: 750 } });
    expect(late.recheckAfterMs).toBeUndefined();
  });

  it('counts one pod per index, the one that succeeded, however many ran', () => {
    const retried = [
      pod('shard-uid', 'score-0-a', 'driver', { phase: 'Failed', index: 0, exitCode: 1, finished: 12 }),
      shardPod(0, 250),
      shardPod(1, 250),
    ];
    const { status } = computeBatchStatus(
      observe({ jobs: [plan, job('score', 'shard-uid', { completed: '0-1', active: 2 })], pods: [planPod, ...retried] }),
    );
    expect(status.rows).toEqual({ total: 1000, done: 500, failed: 0 });
    expect(status.failedShards).toBeUndefined();
  });

  it('is the same status on the next pass, later, when nothing changed (no writes, no hot loop)', () => {
    const parts = { jobs: [plan, job('score', 'shard-uid', { active: 1, completed: '0' })], pods: [planPod, shardPod(0, 250)] };
    const first = computeBatchStatus(observe({ ...parts, now: at(30) })).status;
    const again = computeBatchStatus(observe({ ...parts, bp: batch({}, first), now: at(3000) })).status;
    expect(again).toEqual(first);
  });

  it('keeps a finished run as it ended, whatever its pods do after', () => {
    const done = computeBatchStatus(
      observe({
        jobs: [plan, job('score', 'shard-uid', { completed: '0-3', complete: 40 })],
        pods: [planPod, ...[0, 1, 2, 3].map((i) => shardPod(i, 250))],
        now: at(41),
      }),
    ).status;
    const after = computeBatchStatus(observe({ bp: batch({}, done), jobs: [], pods: [], now: at(9999) })).status;
    expect(after).toBe(done);
  });

  it('reads only the pods of its own Jobs', () => {
    const stray = {
      ...shardPod(1, 9999),
      metadata: {
        ...shardPod(1, 9999).metadata,
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'y', uid: 'other', controller: true }],
      },
    };
    const { status } = computeBatchStatus(
      observe({ jobs: [plan, job('score', 'shard-uid', { completed: '1', active: 1 })], pods: [planPod, stray] }),
    );
    expect(status.rows?.done).toBe(0);
  });
});
