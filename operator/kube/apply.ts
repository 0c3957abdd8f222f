// Writes to the API server: server-side apply with the controller's field manager (force, so a hand edit of
// a field we own is taken back), deletes, and applies to its custom resource's status subresource and finalizers.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { containsFields } from './compare.ts';
import { apiError } from './errors.ts';
import type { Resource } from './watch.ts';

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
  return !containsFields(observed, rest);
}

export interface Writer<Status = unknown> {
  /** Reads one object from the API server (undefined if absent): for objects the caches do not see. */
  read(obj: KubernetesObject): Promise<KubernetesObject | undefined>;
  /**
   * Server-side apply. `force` (the default) takes back fields another manager changed; without it the API
   * server answers 409 when another manager holds a field we set to a different value.
   */
  apply(obj: KubernetesObject, options?: { force?: boolean }): Promise<void>;
  remove(obj: KubernetesObject): Promise<void>;
  /** Server-side applies the status of the writer's custom resource (through its status subresource). */
  applyStatus(namespace: string, name: string, status: Status): Promise<void>;
  /** Server-side applies the finalizers the operator owns on the writer's custom resource ([] releases them). */
  applyFinalizers(namespace: string, name: string, finalizers: string[]): Promise<void>;
}

export interface WriterOptions {
  /** The field manager of every apply (the operator's). */
  fieldManager: string;
  /** The custom resource whose status and finalizers this writer applies. */
  resource: Resource;
  /** Counts each write, by verb and kind. */
  onWrite: (verb: string, kind: string) => void;
}

export function makeWriter<Status = unknown>(kc: KubeConfig, options: WriterOptions): Writer<Status> {
  const { fieldManager, resource, onWrite } = options;
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const [group = '', version = ''] = resource.apiVersion.split('/');
  /** Server-side apply of part of the custom resource (the object itself or its status subresource). */
  const applyCustom = (to: 'object' | 'status', namespace: string, name: string, part: Record<string, unknown>) => {
    const params = {
      group,
      version,
      namespace,
      plural: resource.plural,
      name,
      body: { apiVersion: resource.apiVersion, kind: resource.kind, metadata: { name, namespace }, ...part },
      fieldManager,
      force: true,
    };
    const headers = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
    return to === 'status'
      ? custom.patchNamespacedCustomObjectStatus(params, headers)
      : custom.patchNamespacedCustomObject(params, headers);
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
        if (apiError(err).code === 404) return undefined;
        throw err;
      }
    },
    async apply(obj, applyOptions) {
      onWrite('apply', obj.kind ?? '?');
      await objects.patch(obj, undefined, undefined, fieldManager, applyOptions?.force ?? true, PatchStrategy.ServerSideApply);
    },
    async remove(obj) {
      onWrite('delete', obj.kind ?? '?');
      try {
        await objects.delete(obj, undefined, undefined, undefined, undefined, 'Background');
      } catch (err) {
        if (apiError(err).code !== 404) throw err;
      }
    },
    async applyStatus(namespace, name, status) {
      onWrite('apply-status', resource.kind);
      await applyCustom('status', namespace, name, { status });
    },
    async applyFinalizers(namespace, name, finalizers) {
      onWrite('apply-finalizers', resource.kind);
      // metadata.finalizers is a set: applying our own list adds or removes only the entries we own.
      await applyCustom('object', namespace, name, { metadata: { name, namespace, finalizers } });
    },
  };
}
