// Writes to the API server: server-side apply with the operator's field manager (force, so a hand edit of
// a field we own is taken back), deletes, and status applies through the status subresource.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { GROUP, PLURAL, VERSION, type ModelServingStatus } from '../../crds/modelserving.schema.ts';
import { FIELD_MANAGER } from '../controller/desired/labels.ts';
import { holds } from './compare.ts';

export const SPEC_HASH_ANNOTATION = 'modelship.dev/applied-hash';

/** Stamps `obj` with the hash of its own content, so a later reconcile can tell whether it changed. */
export function withHash<T extends KubernetesObject>(obj: T): T {
  const hash = createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16);
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata?.annotations, [SPEC_HASH_ANNOTATION]: hash } } };
}

/** True when applying `desired` (stamped by withHash) would change `observed`. Pure. */
export function needsApply(desired: KubernetesObject, observed: KubernetesObject | undefined): boolean {
  if (!observed) return true;
  const want = desired.metadata?.annotations?.[SPEC_HASH_ANNOTATION];
  if (observed.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !== want) return true;
  // Objects from a list (the informer's cache) carry no apiVersion and kind.
  const { apiVersion: _a, kind: _k, ...rest } = desired;
  return !holds(observed, rest);
}

export interface Writer {
  /** Reads one object from the API server (undefined if absent): for objects the caches do not see. */
  read(obj: KubernetesObject): Promise<KubernetesObject | undefined>;
  /**
   * Server-side apply. `force` (the default) takes back fields another manager changed; without it the API
   * server answers 409 when another manager holds a field we set to a different value.
   */
  apply(obj: KubernetesObject, options?: { force?: boolean }): Promise<void>;
  remove(obj: KubernetesObject): Promise<void>;
  applyStatus(namespace: string, name: string, status: ModelServingStatus): Promise<void>;
  /** Server-side applies the finalizers the operator owns on a ModelServing ([] releases them). */
  applyFinalizers(namespace: string, name: string, finalizers: string[]): Promise<void>;
}

export function makeWriter(kc: KubeConfig, onWrite: (verb: string, kind: string) => void): Writer {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const custom = kc.makeApiClient(CustomObjectsApi);
  /** Server-side apply of part of a ModelServing (the object itself or its status subresource). */
  const applyModelServing = (to: 'object' | 'status', namespace: string, name: string, part: Record<string, unknown>) => {
    const params = {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ModelServing', metadata: { name, namespace }, ...part },
      fieldManager: FIELD_MANAGER,
      force: true,
    };
    const options = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
    return to === 'status'
      ? custom.patchNamespacedCustomObjectStatus(params, options)
      : custom.patchNamespacedCustomObject(params, options);
  };
  return {
    async read(obj) {
      try {
        return await objects.read({
          apiVersion: obj.apiVersion ?? '',
          kind: obj.kind ?? '',
          metadata: { name: obj.metadata?.name ?? '', namespace: obj.metadata?.namespace ?? '' },
        });
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
    async apply(obj, options) {
      onWrite('apply', obj.kind ?? '?');
      await objects.patch(obj, undefined, undefined, FIELD_MANAGER, options?.force ?? true, PatchStrategy.ServerSideApply);
    },
    async remove(obj) {
      onWrite('delete', obj.kind ?? '?');
      try {
        await objects.delete(obj, undefined, undefined, undefined, undefined, 'Background');
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    },
    async applyStatus(namespace, name, status) {
      onWrite('apply-status', 'ModelServing');
      await applyModelServing('status', namespace, name, { status });
    },
    async applyFinalizers(namespace, name, finalizers) {
      onWrite('apply-finalizers', 'ModelServing');
      // metadata.finalizers is a set: applying our own list adds or removes only the entries we own.
      await applyModelServing('object', namespace, name, { metadata: { name, namespace, finalizers } });
    },
  };
}
