// One reconcile of a BatchPrediction: key → read the caches → create the plan Job, or once the plan is done the
// shard Job → write the status if it changed. Level-based, and each Job is made once: a run's spec never changes,
// and a Job's pod template cannot, so there is nothing to update.
import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject, ObjectCache, V1Job, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BatchPrediction, BatchPredictionStatus } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../../config.ts';
import type { Writer } from '../../kube/apply.ts';
import { apiError, isNamespaceTerminating, TerminalError } from '../../kube/errors.ts';
import type { ReconcileResult } from '../../kube/worker.ts';
import { desiredEnvClaim } from '../desired/deployment.ts';
import { createIfMissing } from '../reconcile.ts';
import { BATCH_LABEL, ownedBy, planJobName, shardJobName } from './labels.ts';
import { desiredPlanJob } from './plan-job.ts';
import { desiredShardJob } from './shard-job.ts';
import { batchModel } from './spec.ts';
import { computeBatchStatus, planOutcome } from './status.ts';

export interface BatchCaches {
  batchPredictions: ObjectCache<BatchPrediction & KubernetesObject>;
  modelServings: ObjectCache<ModelServing & KubernetesObject>;
  jobs: ObjectCache<V1Job>;
  pods: ObjectCache<V1Pod>;
}

export type BatchNote = (bp: BatchPrediction, type: 'Normal' | 'Warning', reason: string, message: string) => void;

export interface BatchReconcileDeps {
  caches: BatchCaches;
  writer: Writer<BatchPredictionStatus>;
  config: OperatorConfig;
  log: Logger;
  now: () => string;
  /** Records an Event about the BatchPrediction (best effort: queued, never awaited). */
  note?: BatchNote;
}

/**
 * Creates a Job of ours without force (a create; no read first). A Job under that name the cache has not seen is
 * read: a stranger's is only a person's to remove (TerminalError); ours is left as it is.
 */
async function createJob(job: V1Job, bp: BatchPrediction, writer: Writer): Promise<boolean> {
  try {
    await writer.apply(job, { force: false });
    return true;
  } catch (err) {
    if (apiError(err).code !== 409) throw err;
    const observed = await writer.read(job);
    if (observed && !ownedBy(observed, bp.metadata.uid)) throw strangerJob(job, bp);
    return false;
  }
}

const strangerJob = (job: V1Job, bp: BatchPrediction) =>
  new TerminalError(`Job ${bp.metadata.namespace}/${job.metadata?.name} exists and is not owned by this BatchPrediction`);

/** What is left of spec.activeDeadlineSeconds once the plan has run (the deadline bounds the whole run). */
function remainingDeadline(bp: BatchPrediction, planJob: V1Job, now: string): number | undefined {
  const deadline = bp.spec.activeDeadlineSeconds;
  if (deadline === undefined) return undefined;
  const started = planJob.status?.startTime ? new Date(planJob.status.startTime).getTime() : Date.parse(now);
  return deadline - (Date.parse(now) - started) / 1000;
}

export async function reconcileBatch(key: string, deps: BatchReconcileDeps): Promise<ReconcileResult> {
  const [namespace = '', name = ''] = key.split('/');
  const { caches, writer, config } = deps;
  const bp = caches.batchPredictions.get(name, namespace) as BatchPrediction | undefined;
  // Deleted: the garbage collector removes its Jobs and their pods (owner references). Finished: nothing to do.
  if (!bp || bp.metadata.deletionTimestamp || bp.status?.completionTime) return {};
  const note = (type: 'Normal' | 'Warning', reason: string, message: string) => deps.note?.(bp, type, reason, message);
  const now = deps.now();
  const wanted = bp.spec.model.modelServing;
  const ms = wanted ? (caches.modelServings.get(wanted, namespace) as ModelServing | undefined) : undefined;
  const model = batchModel(bp, ms);
  const modelMissing = !model;
  let planJob = caches.jobs.get(planJobName(bp), namespace);
  let shardJob = caches.jobs.get(shardJobName(bp), namespace);
  const pods = caches.pods.list(namespace).filter((p) => p.metadata?.labels?.[BATCH_LABEL] === name);

  let failure: unknown;
  let applyError: { reason: string; message: string } | undefined;
  const created: string[] = [];
  try {
    for (const job of [planJob, shardJob]) if (job && !ownedBy(job, bp.metadata.uid)) throw strangerJob(job, bp);
    if (!planJob && model) {
      const job = desiredPlanJob(bp, config, model);
      if (await createJob(job, bp, writer)) created.push(`created Job ${job.metadata?.name}`);
    } else if (planJob && !shardJob && model) {
      const plan = planOutcome(planJob, pods);
      if (plan.state === 'done' && plan.report.shards > 0) {
        // A Python model in a namespace with no ModelServing of its own yet: the environment cache's claim.
        const claim = desiredEnvClaim(model, config);
        if (claim) await createIfMissing(claim, deps, created);
        const job = desiredShardJob(bp, config, model, plan.report.shards, remainingDeadline(bp, planJob, now));
        if (await createJob(job, bp, writer)) created.push(`created Job ${job.metadata?.name} (${plan.report.shards} shards)`);
      }
    }
  } catch (err) {
    // The namespace is being deleted, this BatchPrediction with it: nothing to retry, nothing to report.
    if (isNamespaceTerminating(err)) return {};
    failure = err;
    const { message } = apiError(err);
    applyError = { reason: err instanceof TerminalError ? err.reason : 'ApplyFailed', message };
    // A stranger's Job is not ours to look at.
    if (err instanceof TerminalError) {
      planJob = ownedBy(planJob, bp.metadata.uid) ? planJob : undefined;
      shardJob = ownedBy(shardJob, bp.metadata.uid) ? shardJob : undefined;
    }
    note('Warning', applyError.reason, message);
  }
  if (created.length && !applyError) {
    note('Normal', 'Created', created.join(', '));
    // The new Job's informer event queues this key again: that pass writes the status from what the server holds.
    return { requeueAfterMs: 5000 };
  }

  const { status, recheckAfterMs } = computeBatchStatus({ bp, planJob, shardJob, pods, modelMissing, applyError, now });
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(status)), JSON.parse(JSON.stringify(bp.status ?? {})))) {
    await writer.applyStatus(namespace, name, status);
    if (status.phase !== bp.status?.phase && (status.phase === 'Succeeded' || status.phase === 'Failed')) {
      const outcome = status.conditions?.find((c) => c.type === (status.phase === 'Succeeded' ? 'Complete' : 'Failed'));
      note(status.phase === 'Succeeded' ? 'Normal' : 'Warning', outcome?.reason ?? status.phase, outcome?.message ?? status.phase);
    }
  }
  // The status says why; the worker decides whether to retry (a TerminalError is not retried).
  if (failure) throw failure;
  return recheckAfterMs ? { requeueAfterMs: recheckAfterMs } : {};
}
