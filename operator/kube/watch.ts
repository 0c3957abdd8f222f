// One informer per resource and label selector, however many controllers ask for it: the ModelServing and
// BatchPrediction controllers both read ModelServings, pods and namespace claims, and a second watch of each would
// double the API server's work and the operator's memory. Each watch is one cluster-wide informer, or one per
// configured namespace (so the operator can run with Roles in those namespaces only) behind a single cache.
import { type KubeConfig, type KubernetesObject, KubernetesObjectApi, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { combinedCache, type ResilientInformer, startInformer } from './informer.ts';

export interface Resource {
  apiVersion: string;
  kind: string;
  /** API path prefix: /api/v1 or /apis/<group>/<version>. */
  base: string;
  plural: string;
}

export const RESOURCES = {
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment', base: '/apis/apps/v1', plural: 'deployments' },
  services: { apiVersion: 'v1', kind: 'Service', base: '/api/v1', plural: 'services' },
  hpas: { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', base: '/apis/autoscaling/v2', plural: 'horizontalpodautoscalers' },
  pdbs: { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', base: '/apis/policy/v1', plural: 'poddisruptionbudgets' },
  jobs: { apiVersion: 'batch/v1', kind: 'Job', base: '/apis/batch/v1', plural: 'jobs' },
  pods: { apiVersion: 'v1', kind: 'Pod', base: '/api/v1', plural: 'pods' },
  namespaces: { apiVersion: 'v1', kind: 'Namespace', base: '/api/v1', plural: 'namespaces' },
} satisfies Record<string, Resource>;

/** A custom resource's API path and names. */
export function customResource(group: string, version: string, kind: string, plural: string): Resource {
  return { apiVersion: `${group}/${version}`, kind, base: `/apis/${group}/${version}`, plural };
}

export interface Watched<T extends KubernetesObject> {
  cache: ObjectCache<T>;
  /** Called on every add, update and delete (handlers of every controller that watches it). */
  onChange(handler: (obj: T) => void): void;
  synced: Promise<void>;
}

export interface WatchesOptions {
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  log: Logger;
  /** An informer stopped on an error (it restarts with backoff). */
  onError?: (informer: string) => void;
}

export class Watches {
  private readonly kc: KubeConfig;
  private readonly options: WatchesOptions;
  private readonly watched = new Map<string, Watched<KubernetesObject>>();
  private readonly informers: ResilientInformer<KubernetesObject>[] = [];

  constructor(kc: KubeConfig, options: WatchesOptions) {
    this.kc = kc;
    this.options = options;
  }

  /** The shared watch of `resource` (objects matching `labelSelector`); `clusterWide` ignores the configured namespaces. */
  watch<T extends KubernetesObject>(resource: Resource, labelSelector?: string, clusterWide = false): Watched<T> {
    const key = `${resource.base}/${resource.plural}?${labelSelector ?? ''}${clusterWide ? '&cluster' : ''}`;
    const existing = this.watched.get(key);
    if (existing) return existing as unknown as Watched<T>;
    const objects = KubernetesObjectApi.makeApiClient(this.kc);
    const { namespaces, log, onError } = this.options;
    const scopes: (string | undefined)[] = namespaces.length > 0 && !clusterWide ? namespaces : [undefined];
    const parts = scopes.map((namespace) => {
      const informer = startInformer<T>({
        kubeConfig: this.kc,
        name: namespace ? `${resource.plural}/${namespace}` : resource.plural,
        path: `${resource.base}${namespace ? `/namespaces/${namespace}` : ''}/${resource.plural}`,
        list: (() =>
          objects.list<T>(
            resource.apiVersion,
            resource.kind,
            namespace,
            undefined,
            undefined,
            undefined,
            undefined,
            labelSelector,
          )) as never,
        ...(labelSelector ? { labelSelector } : {}),
        log,
        ...(onError ? { onError } : {}),
      });
      this.informers.push(informer as unknown as ResilientInformer<KubernetesObject>);
      return [namespace ?? '', informer] as const;
    });
    const watched: Watched<T> = {
      cache:
        parts.length === 1 && parts[0]?.[0] === ''
          ? parts[0][1].cache
          : combinedCache(new Map(parts.map(([namespace, informer]) => [namespace, informer.cache]))),
      onChange: (handler) => {
        for (const [, informer] of parts) informer.onChange(handler);
      },
      synced: Promise.all(parts.map(([, informer]) => informer.synced)).then(() => {}),
    };
    this.watched.set(key, watched as unknown as Watched<KubernetesObject>);
    return watched;
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }
}
