// PURE: a BatchPrediction's Jobs and their pods → its status. Rows come from the shard pods' reports (one pod per
// index: the one that succeeded), shard counts from the Job's own index lists, the rate from the rows done over the
// time from the start to the latest finished shard. No clock reads: `now` (passed in) only stamps conditions whose
// status changes and ends the wait for late reports, so an unchanged world gives an identical status. A run that
// succeeded or failed (completionTime set) keeps its status for good: a BatchPrediction is one run.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { BatchPrediction, BatchPredictionStatus } from '../../../crds/batchprediction.schema.ts';
import { BATCH, type BatchPlanReport } from '../../../runtime/contract.ts';
import { condition } from '../status.ts';
import {
  completionIndex,
  type Failure,
  indexes,
  jobCondition,
  planReport,
  podFailure,
  podsOf,
  shardReport,
  terminated,
} from './reports.ts';

export interface BatchObserved {
  bp: BatchPrediction;
  planJob: V1Job | undefined;
  shardJob: V1Job | undefined;
  /** The pods labelled for this BatchPrediction (only its Jobs' own are counted). */
  pods: V1Pod[];
  /** spec.model.modelServing names a ModelServing that does not exist. */
  modelMissing: boolean;
  /** Set when creating a Job failed: Conflict (a stranger's Job under the name) or ApplyFailed. */
  applyError?: { reason: string; message: string } | undefined;
  now: string;
}

export interface BatchStatusResult {
  status: BatchPredictionStatus;
  /** Look again after this long: a finished Job whose pods' reports are not in the cache yet. */
  recheckAfterMs?: number;
}

export type PlanOutcome =
  | { state: 'absent' }
  | { state: 'running' }
  | { state: 'done'; report: BatchPlanReport }
  | { state: 'failed'; failure: Failure; at: string | undefined };

/** How long after a Job finished its pods' reports may still be on their way (the pod and Job watches are apart). */
export const REPORT_GRACE_MS = 60_000;
const RECHECK_MS = 5_000;
/** Failed shards listed in the status. */
const MAX_FAILED_SHARDS = 10;

/** A time as the API server writes it (RFC 3339, whole seconds), from a Date or a string. */
export function rfc3339(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const ms = (value: Date | string | undefined) => (value === undefined ? Number.NaN : new Date(value).getTime());

/** Where the plan stands: not made yet, running, done with its report, or failed and why. */
export function planOutcome(job: V1Job | undefined, pods: V1Pod[]): PlanOutcome {
  if (!job) return { state: 'absent' };
  const own = podsOf(job, pods);
  const failed = jobCondition(job, 'Failed');
  if (failed) {
    const pod = latest(own.filter((p) => p.status?.phase === 'Failed'));
    // Past its deadline the Job stops its pod: the deadline is why, not the pod's exit.
    const failure =
      pod && failed.reason !== 'DeadlineExceeded'
        ? podFailure(pod, BATCH.containers.plan)
        : { code: failed.reason || 'Failed', message: failed.message || 'the plan Job failed' };
    return { state: 'failed', failure, at: rfc3339(failed.lastTransitionTime) };
  }
  if (!jobCondition(job, 'Complete')) return { state: 'running' };
  const pod = own.find((p) => p.status?.phase === 'Succeeded');
  if (!pod) return { state: 'running' }; // its pod is not in the cache yet
  const report = planReport(terminated(pod, BATCH.containers.plan));
  if (!report) {
    const message = `the plan pod ${pod.metadata?.name ?? ''} succeeded without a report in its termination message`;
    return {
      state: 'failed',
      failure: { code: 'PlanReportMissing', message },
      at: rfc3339(jobCondition(job, 'Complete')?.lastTransitionTime),
    };
  }
  if (report.code) return { state: 'failed', failure: { code: report.code, message: report.message ?? '' }, at: undefined };
  return { state: 'done', report };
}

/** The pod that ended last (by its containers' finish, else its creation). */
function latest(pods: V1Pod[]): V1Pod | undefined {
  const end = (p: V1Pod) => {
    const times = [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].map((c) =>
      ms(c.state?.terminated?.finishedAt),
    );
    const finished = Math.max(...times.filter((t) => !Number.isNaN(t)), Number.NEGATIVE_INFINITY);
    return Number.isFinite(finished) ? finished : ms(p.metadata?.creationTimestamp);
  };
  return [...pods].sort((a, b) => end(b) - end(a) || (b.metadata?.name ?? '').localeCompare(a.metadata?.name ?? ''))[0];
}

interface ShardProgress {
  succeeded: number;
  failed: number;
  running: number;
  skipped: number;
  rowsDone: number;
  /** Rows this run scored (a skipped shard's were scored by an earlier one): what rows/s counts. */
  rowsScored: number;
  rowsFailed: number;
  /** The latest finish of a succeeded shard (ms). */
  lastFinish: number;
  failedShards: { index: number; code: string; message: string }[];
  /** Every finished index has the pod that says how it ended in the cache. */
  settled: boolean;
}

function shardProgress(job: V1Job, allPods: V1Pod[]): ShardProgress {
  const pods = podsOf(job, allPods);
  const completed = indexes(job.status?.completedIndexes);
  const failedIndexes = indexes(job.status?.failedIndexes ?? undefined);
  // One pod per index counts: the one that succeeded (a second one, should the Job ever make it, is ignored).
  const succeededBy = new Map<number, V1Pod>();
  for (const pod of [...pods].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
    const index = completionIndex(pod);
    if (index !== undefined && pod.status?.phase === 'Succeeded' && !succeededBy.has(index)) succeededBy.set(index, pod);
  }
  let rowsDone = 0;
  let rowsScored = 0;
  let rowsFailed = 0;
  let skipped = 0;
  let lastFinish = Number.NaN;
  let reported = 0;
  for (const index of completed) {
    const pod = succeededBy.get(index);
    const state = pod && terminated(pod, BATCH.containers.driver);
    const report = shardReport(state);
    if (!report) continue;
    reported++;
    rowsDone += report.rows;
    rowsFailed += report.errorRows;
    if (report.skipped) skipped++;
    else rowsScored += report.rows + report.errorRows;
    const finished = ms(state?.finishedAt);
    if (!Number.isNaN(finished) && !(finished <= lastFinish)) lastFinish = finished;
  }
  const failedShards: ShardProgress['failedShards'] = [];
  let failuresKnown = true;
  for (const index of failedIndexes.slice(0, MAX_FAILED_SHARDS)) {
    const pod = latest(pods.filter((p) => completionIndex(p) === index && p.status?.phase === 'Failed'));
    if (!pod) failuresKnown = false;
    const failure = pod ? podFailure(pod, BATCH.containers.driver) : { code: 'Failed', message: 'its pods are gone' };
    failedShards.push({ index, code: failure.code.slice(0, 128), message: failure.message.slice(0, 1024) });
  }
  return {
    succeeded: completed.length,
    failed: failedIndexes.length,
    running: job.status?.active ?? 0,
    skipped,
    rowsDone,
    rowsScored,
    rowsFailed,
    lastFinish,
    failedShards,
    settled: reported === completed.length && failuresKnown,
  };
}

export function computeBatchStatus(observed: BatchObserved): BatchStatusResult {
  const { bp, now, planJob, shardJob, applyError } = observed;
  const prev = bp.status;
  // One run: once it succeeded or failed, its status is its record (its pods may be collected later).
  if (prev?.completionTime) return { status: prev };
  const gen = bp.metadata.generation;
  const cond = (type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string) =>
    condition(prev?.conditions, type, status, reason, message, now, gen);

  const plan = planOutcome(planJob, observed.pods);
  const report = plan.state === 'done' ? plan.report : undefined;
  const progress = report && shardJob ? shardProgress(shardJob, observed.pods) : undefined;
  const startTime = prev?.startTime ?? rfc3339(planJob?.status?.startTime);
  const output = bp.spec.output.uri;
  const status: BatchPredictionStatus = {
    ...(gen !== undefined ? { observedGeneration: gen } : {}),
    outputUri: output,
    // The driver writes each shard's refused rows to <output>/errors/part-<shard>.jsonl.
    errorsUri: `${output.replace(/\/+$/, '')}/errors/`,
    ...(startTime ? { startTime } : {}),
  };
  if (report) {
    status.rows = { total: report.rows, done: progress?.rowsDone ?? 0, failed: progress?.rowsFailed ?? 0 };
    status.shards = {
      total: report.shards,
      succeeded: progress?.succeeded ?? 0,
      failed: progress?.failed ?? 0,
      running: progress?.running ?? 0,
      skipped: progress?.skipped ?? 0,
    };
    const seconds = ((progress?.lastFinish ?? Number.NaN) - ms(startTime)) / 1000;
    if (progress && progress.rowsScored > 0 && seconds > 0) status.rowsPerSecond = Math.round(progress.rowsScored / seconds);
    if (progress?.failedShards.length) status.failedShards = progress.failedShards;
  }

  const planned =
    plan.state === 'done'
      ? cond('Planned', 'True', 'Planned', `${plan.report.rows} rows in ${plan.report.files} files: ${plan.report.shards} shards`)
      : plan.state === 'failed'
        ? cond('Planned', 'False', plan.failure.code, plan.failure.message)
        : plan.state === 'running'
          ? cond('Planned', 'Unknown', 'Planning', 'listing the input and cutting it into shards')
          : cond('Planned', 'Unknown', 'Pending', 'the plan Job is being created');
  const finish = (phase: 'Succeeded' | 'Failed', reason: string, message: string, at: string | undefined): BatchStatusResult => {
    const ok = phase === 'Succeeded';
    return {
      status: {
        ...status,
        phase,
        completionTime: at ?? now,
        conditions: [
          planned,
          cond('Complete', ok ? 'True' : 'False', reason, message),
          ok ? cond('Failed', 'False', 'AsExpected', 'no failure') : cond('Failed', 'True', reason, message),
        ],
      },
    };
  };
  /** Not finished: `failed` says so without ending the run (something can still change it). */
  const going = (phase: BatchPredictionStatus['phase'], reason: string, message: string, failed?: boolean, recheck?: boolean) => {
    const transient = applyError && !failed ? applyError : undefined;
    return {
      status: {
        ...status,
        phase: failed ? 'Failed' : phase,
        conditions: [
          planned,
          cond('Complete', 'False', transient?.reason ?? reason, transient?.message ?? message),
          failed ? cond('Failed', 'True', reason, message) : cond('Failed', 'False', 'AsExpected', 'no failure'),
        ],
      },
      ...(recheck ? { recheckAfterMs: RECHECK_MS } : {}),
    } satisfies BatchStatusResult;
  };

  // A stranger's Job under our name: only a person can fix it, and the run goes on when they do.
  if (applyError && applyError.reason !== 'ApplyFailed') return going('Failed', applyError.reason, applyError.message, true);
  if (plan.state === 'failed') return finish('Failed', plan.failure.code, `the plan failed: ${plan.failure.message}`, plan.at);
  if (observed.modelMissing && !shardJob) {
    const name = bp.spec.model.modelServing ?? '';
    const message = `ModelServing ${name} does not exist in namespace ${bp.metadata.namespace}; the run goes on once it does`;
    // Pending, not Failed: nothing has failed, and a client waiting for the end (modelship batch --wait) must not stop.
    return going('Pending', 'ModelServingNotFound', message);
  }
  if (plan.state === 'absent') return going('Pending', 'Pending', 'the plan Job is being created');
  if (plan.state === 'running') return going('Planning', 'Planning', 'planning the shards');
  if (plan.report.shards === 0) {
    return finish('Succeeded', 'Succeeded', 'the input has no rows', rfc3339(planJob?.status?.completionTime));
  }
  if (!shardJob || !progress) return going('Running', 'Running', `starting ${plan.report.shards} shards`);

  const rows = status.rows as { total: number; done: number; failed: number };
  const counts = `${progress.succeeded} of ${plan.report.shards} shards done${progress.skipped ? ` (${progress.skipped} from an earlier run)` : ''}`;
  const failedJob = jobCondition(shardJob, 'Failed');
  const complete = jobCondition(shardJob, 'Complete');
  const ended = failedJob ?? complete;
  if (ended) {
    // The Job ended; its last pods' reports may reach the cache a moment after it: wait for them, a while.
    const endedAt = rfc3339(failedJob ? failedJob.lastTransitionTime : (shardJob.status?.completionTime ?? complete?.lastTransitionTime));
    const waited = endedAt === undefined || Date.parse(now) - ms(endedAt) >= REPORT_GRACE_MS;
    if (!progress.settled && !waited) {
      return going('Running', 'Running', `${rows.done} of ${rows.total} rows; ${counts}; reading the last reports`, false, true);
    }
    if (failedJob) {
      const first = failedJob.reason === 'DeadlineExceeded' ? undefined : progress.failedShards[0];
      const reason = first?.code ?? (failedJob.reason || 'Failed');
      const why = first ? `shard ${first.index}: ${first.message}` : failedJob.message || 'the shard Job failed';
      return finish(
        'Failed',
        reason,
        `${why} (${progress.failed} of ${plan.report.shards} shards failed; ${rows.done} rows done)`,
        endedAt,
      );
    }
    const refused = rows.failed ? `; ${rows.failed} rows refused by the model, in ${status.errorsUri}` : '';
    return finish('Succeeded', 'Succeeded', `${rows.done} rows scored in ${plan.report.shards} shards${refused}`, endedAt);
  }
  const failing = progress.failed ? `, ${progress.failed} failed` : '';
  return going('Running', 'Running', `${rows.done} of ${rows.total} rows; ${counts}, ${progress.running} running${failing}`);
}
