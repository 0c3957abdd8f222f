// An informer that does not die silently: client-node's ListWatch stops on a watch error, so this wrapper
// restarts it with exponential backoff (1 s doubling to 30 s) and reports each error. `synced` resolves
// after the first successful list, never before (so /readyz stays false while the API server refuses us).
import {
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
  makeInformer,
  type Informer,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiError } from './errors.ts';

export interface ResilientInformer<T extends KubernetesObject> {
  cache: ObjectCache<T>;
  synced: Promise<void>;
  onChange(handler: (obj: T) => void): void;
  stop(): Promise<void>;
}

export function startInformer<T extends KubernetesObject>(opts: {
  kubeConfig: KubeConfig;
  name: string;
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  log: Logger;
  onError?: (name: string) => void;
}): ResilientInformer<T> {
  const inf: Informer<T> & ObjectCache<T> = makeInformer(opts.kubeConfig, opts.path, opts.list, opts.labelSelector);
  const handlers: ((obj: T) => void)[] = [];
  const emit = (obj: T) => {
    for (const h of handlers) h(obj);
  };
  // The cache holds the very object passed to these callbacks. managedFields (often half of an object's
  // size) are of no use to the operator, which compares desired fields only: drop them before anyone sees it.
  const strip = (obj: T) => {
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  };
  inf.on('add', strip);
  inf.on('update', strip);
  inf.on('add', emit);
  inf.on('update', emit);
  inf.on('delete', emit);
  let stopped = false;
  let delay = 1000;
  let timer: NodeJS.Timeout | undefined;
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((r) => {
    markSynced = r;
  });
  // client-node's start() resolves even when its list or its watch failed (it reports that through 'error'):
  // only an attempt that reported nothing makes the cache synced and resets the backoff.
  let attemptFailed = false;
  const restart = (err: unknown) => {
    attemptFailed = true;
    if (stopped) return;
    opts.onError?.(opts.name);
    opts.log.warn({ informer: opts.name, err: apiError(err).message, retryInMs: delay }, 'informer stopped; restarting');
    clearTimeout(timer);
    timer = setTimeout(start, delay);
    delay = Math.min(30_000, delay * 2);
  };
  function start() {
    attemptFailed = false;
    inf.start().then(() => {
      if (attemptFailed) return; // reported through 'error', which scheduled the next try
      delay = 1000;
      markSynced();
    }, restart);
  }
  inf.on('error', restart);
  start();
  return {
    cache: inf,
    synced,
    onChange: (h) => {
      handlers.push(h);
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await inf.stop();
    },
  };
}

/** One cache over several namespaced informers of the same resource (a watch per namespace). */
export function combinedCache<T extends KubernetesObject>(byNamespace: Map<string, ObjectCache<T>>): ObjectCache<T> {
  return {
    get: (name, namespace) => (namespace === undefined ? undefined : byNamespace.get(namespace)?.get(name, namespace)),
    list: (namespace) =>
      namespace === undefined ? [...byNamespace.values()].flatMap((c) => c.list()) : (byNamespace.get(namespace)?.list(namespace) ?? []),
  };
}
