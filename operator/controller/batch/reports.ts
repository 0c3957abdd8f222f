// What the plan and shard pods said when they ended: their JSON report (BatchPlanReport, BatchShardReport) in the
// container's termination message, or why they failed without one (a coded message, the container's reason such as
// OOMKilled, the pod's such as DeadlineExceeded). Pure.
import type { V1ContainerStateTerminated, V1Job, V1Pod } from '@kubernetes/client-node';
import type { BatchPlanReport, BatchShardReport } from '../../../runtime/contract.ts';
import { codedMessage, jsonReport, lastLogLine } from '../termination.ts';

export const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

export interface Failure {
  code: string;
  message: string;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const text = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The container's last termination: where it ended, or its previous run when it runs again. */
export function terminated(pod: V1Pod, container: string): V1ContainerStateTerminated | undefined {
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const cs = statuses.find((c) => c.name === container);
  return cs?.state?.terminated ?? cs?.lastState?.terminated;
}

export function planReport(state: V1ContainerStateTerminated | undefined): BatchPlanReport | undefined {
  const r = jsonReport(state);
  if (!r || !isCount(r.shards) || !isCount(r.rows) || !isCount(r.files)) return undefined;
  return { shards: r.shards, rows: r.rows, files: r.files, ...coded(r) };
}

export function shardReport(state: V1ContainerStateTerminated | undefined): BatchShardReport | undefined {
  const r = jsonReport(state);
  if (!r || !isCount(r.rows) || !isCount(r.errorRows)) return undefined;
  return {
    shard: typeof r.shard === 'number' ? r.shard : -1,
    rows: r.rows,
    errorRows: r.errorRows,
    seconds: typeof r.seconds === 'number' ? r.seconds : 0,
    ...(r.skipped === true ? { skipped: true } : {}),
    ...coded(r),
  };
}

function coded(r: Record<string, unknown>): { code?: string; message?: string } {
  const code = text(r.code);
  const message = text(r.message);
  return { ...(code ? { code } : {}), ...(message !== undefined ? { message } : {}) };
}

/** Why a failed pod failed: its report's code, a coded message, the container's reason, or the pod's. */
export function podFailure(pod: V1Pod, container: string): Failure {
  const state = terminated(pod, container);
  const report = jsonReport(state);
  if (report && text(report.code)) return { code: text(report.code) as string, message: text(report.message) ?? '' };
  const message = (state?.message ?? '').trim();
  const fromText = codedMessage(message);
  if (fromText) return fromText;
  if (state && state.exitCode !== 0) {
    // No report: the kubelet's reason (OOMKilled) first, else what the log's last line says.
    const last = lastLogLine(message);
    const exited = `the ${container} container exited with code ${state.exitCode}${state.reason && state.reason !== 'Error' ? ` (${state.reason})` : ''}`;
    return {
      code: state.reason === 'OOMKilled' ? state.reason : (last.code ?? (state.reason || 'Error')),
      message: last.message ? `${exited}: ${last.message}` : exited,
    };
  }
  if (pod.status?.reason) return { code: pod.status.reason, message: pod.status.message ?? pod.status.reason };
  const waiting = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].find(
    (c) => c.state?.waiting?.reason && c.state.waiting.reason !== 'PodInitializing',
  )?.state?.waiting;
  if (waiting?.reason) return { code: waiting.reason, message: waiting.message ?? waiting.reason };
  return { code: 'Failed', message: `pod ${pod.metadata?.name ?? ''} failed` };
}

/** The pods of a Job (its controller's uid in their owner references). */
export function podsOf(job: V1Job | undefined, pods: V1Pod[]): V1Pod[] {
  const uid = job?.metadata?.uid;
  if (!uid) return [];
  return pods.filter((p) => p.metadata?.ownerReferences?.some((r) => r.uid === uid));
}

/** A pod's completion index in an Indexed Job, or undefined. */
export function completionIndex(pod: V1Pod): number | undefined {
  const raw = pod.metadata?.annotations?.[COMPLETION_INDEX] ?? pod.metadata?.labels?.[COMPLETION_INDEX];
  const n = raw === undefined ? Number.NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** An Indexed Job's index list ("0-3,7") as indexes. */
export function indexes(list: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (list ?? '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let i = from; i <= to; i++) out.push(i);
  }
  return out;
}

/** The Job's condition of `type` when it is True. */
export function jobCondition(job: V1Job | undefined, type: string) {
  return job?.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}
