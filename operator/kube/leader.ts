// Leader election with a coordination.k8s.io/v1 Lease (15 s lease, 10 s renew deadline, 2 s retry). The
// holder renews every retry period; if it cannot renew within the deadline it has lost the lease and calls
// onLost (the operator then exits). On a clean stop it releases the lease so another replica takes over at once.
import { setTimeout as delay } from 'node:timers/promises';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { apiError } from './errors.ts';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits (a plain Date serializes three). */
export function microTime(d: Date): Date {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => {});

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly o: Required<Omit<LeaderOptions, 'log'>> & { log: Logger };
  private readonly stopper = new AbortController();
  private leading = false;

  constructor(kc: KubeConfig, opts: LeaderOptions) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
  }

  /** Tries to take or renew the lease once; true when this process holds it afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.o;
    const nowDate = new Date();
    const now = microTime(nowDate);
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (!lease) {
      await this.api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < nowDate.getTime();
    if (holder !== identity && !expired) return false;
    const taking = holder !== identity;
    // resourceVersion in the body makes this a compare-and-swap: a concurrent taker gets a 409.
    await this.api.replaceNamespacedLease({
      name,
      namespace,
      body: {
        metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: taking || !spec.acquireTime ? now : microTime(new Date(spec.acquireTime)),
          renewTime: now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
        },
      },
    });
    return true;
  }

  /** Blocks until leadership is acquired, then keeps renewing in the background; onLost on failure to renew. */
  async acquire(onLost: () => void): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      try {
        if (await this.tryAcquireOrRenew()) break;
      } catch (err) {
        this.o.log.debug({ err: apiError(err).message }, 'lease not acquired');
      }
      await sleep(this.o.retryPeriodMs, signal);
    }
    if (signal.aborted) return;
    this.leading = true;
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, 'became leader');
    void this.renewLoop(onLost);
  }

  private async renewLoop(onLost: () => void): Promise<void> {
    const signal = this.stopper.signal;
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (signal.aborted) return;
      try {
        if (await this.tryAcquireOrRenew()) {
          lastRenew = Date.now();
          continue;
        }
        this.o.log.error('another process holds the lease');
      } catch (err) {
        this.o.log.warn({ err: apiError(err).message }, 'lease renewal failed');
        if (Date.now() - lastRenew < this.o.renewDeadlineMs) continue;
      }
      this.leading = false;
      this.o.log.error('lost the leader lease');
      onLost();
      return;
    }
  }

  /** Stops renewing and releases the lease if held. */
  async release(): Promise<void> {
    this.stopper.abort();
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name } = this.o;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 },
        },
      });
    } catch (err) {
      this.o.log.warn({ err: apiError(err).message }, 'could not release the lease');
    }
  }
}
