// One reconcile: key → read the caches → build the desired objects → apply what differs → write the status
// if it changed. Level-based: it looks only at the current state, never at the event that queued it.
import { isDeepStrictEqual } from 'node:util';
import type {
  KubernetesObject,
  ObjectCache,
  V1Deployment,
  V1Pod,
  V1PodDisruptionBudget,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { type Writer, needsApply, withHash } from '../kube/apply.ts';
import { desiredHpa, desiredPdb } from './desired/autoscaling.ts';
import { desiredDeployment } from './desired/deployment.ts';
import { MODEL_LABEL } from './desired/labels.ts';
import { desiredService } from './desired/service.ts';
import { computeStatus } from './status.ts';

export interface Caches {
  modelServings: ObjectCache<ModelServing & KubernetesObject>;
  deployments: ObjectCache<V1Deployment>;
  services: ObjectCache<V1Service>;
  hpas: ObjectCache<V2HorizontalPodAutoscaler>;
  pdbs: ObjectCache<V1PodDisruptionBudget>;
  pods: ObjectCache<V1Pod>;
}

export interface ReconcileDeps {
  caches: Caches;
  writer: Writer;
  config: OperatorConfig;
  log: Logger;
  now: () => string;
  event?: (ms: ModelServing, type: 'Normal' | 'Warning', reason: string, message: string) => Promise<void>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

function ownedBy(obj: KubernetesObject | undefined, ms: ModelServing): boolean {
  return !!obj?.metadata?.ownerReferences?.some((r) => r.uid === ms.metadata.uid && r.controller);
}

export async function reconcile(key: string, deps: ReconcileDeps): Promise<ReconcileResult> {
  const [namespace = '', name = ''] = key.split('/');
  const { caches, writer, config } = deps;
  const ms = caches.modelServings.get(name, namespace) as ModelServing | undefined;
  // Deleted: the garbage collector removes what it owned (owner references); nothing to do.
  if (!ms || ms.metadata.deletionTimestamp) return {};

  const plan: { desired: KubernetesObject; observed: KubernetesObject | undefined }[] = [
    { desired: withHash(desiredDeployment(ms, config)), observed: caches.deployments.get(name, namespace) },
    { desired: withHash(desiredService(ms)), observed: caches.services.get(name, namespace) },
  ];
  const hpa = desiredHpa(ms);
  const observedHpa = caches.hpas.get(name, namespace);
  if (hpa) plan.push({ desired: withHash(hpa), observed: observedHpa });
  const pdb = desiredPdb(ms);
  const observedPdb = caches.pdbs.get(name, namespace);
  if (pdb) plan.push({ desired: withHash(pdb), observed: observedPdb });

  let applyError: { reason: string; message: string } | undefined;
  let failure: unknown;
  const note = (type: 'Normal' | 'Warning', reason: string, message: string) => {
    // Events are best effort and never hold up a reconcile.
    void deps.event?.(ms, type, reason, message).catch(() => {});
  };
  const changed: string[] = [];
  try {
    // The objects are independent: read (on a cache miss) and apply them concurrently.
    await Promise.all(
      plan.map(async (item) => {
        const { desired } = item;
        // The caches see only objects labelled as ours; before creating, make sure no stranger holds the name.
        const observed = item.observed ?? (await writer.read(desired));
        if (observed && !ownedBy(observed, ms)) {
          throw Object.assign(new Error(`${desired.kind} ${namespace}/${name} exists and is not owned by this ModelServing`), {
            terminal: true,
          });
        }
        if (needsApply(desired, observed)) {
          await writer.apply(desired);
          changed.push(`${observed ? 'updated' : 'created'} ${desired.kind} ${name}`);
        }
      }),
    );
    if (changed.length) note('Normal', changed.every((c) => c.startsWith('created')) ? 'Created' : 'Updated', changed.join(', '));
    if (!hpa && observedHpa && ownedBy(observedHpa, ms)) {
      await writer.remove(observedHpa);
      note('Normal', 'Deleted', `deleted HorizontalPodAutoscaler ${name}: autoscaling is off`);
    }
    if (!pdb && observedPdb && ownedBy(observedPdb, ms)) await writer.remove(observedPdb);
  } catch (err) {
    failure = err;
    const e = err as { body?: string; message?: string; terminal?: boolean };
    let message = e.message ?? String(err);
    try {
      if (e.body) message = (JSON.parse(e.body) as { message?: string }).message ?? message;
    } catch {
      // not JSON
    }
    applyError = { reason: e.terminal ? 'Conflict' : 'ApplyFailed', message };
    note('Warning', applyError.reason, message);
  }

  // Objects just created are not in the caches yet; their informer events queue this key again, and that
  // pass writes a status from what the API server actually holds: one status write instead of two.
  // (Only creations: an update that changes nothing on the server raises no event.)
  if (changed.some((c) => c.startsWith('created')) && !applyError) return { requeueAfterMs: 5000 };

  const pods = caches.pods.list(namespace).filter((p) => p.metadata?.labels?.[MODEL_LABEL] === name);
  const status = computeStatus({ ms, deployment: caches.deployments.get(name, namespace), pods, now: deps.now(), applyError });
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(status)), JSON.parse(JSON.stringify(ms.status ?? {})))) {
    await writer.applyStatus(namespace, name, status);
  }
  if (failure && !(failure as { terminal?: boolean }).terminal) throw failure;
  return {};
}
