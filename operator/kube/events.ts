// Events are best effort and must never hold up a reconcile nor crowd out its writes: the recorder queues
// them (bounded, like client-go's broadcaster: when full, new events are dropped and counted) and one sender
// writes them in order, so a burst of reconciles costs the API server one event write at a time.
import type { CoreV1Event } from '@kubernetes/client-node';

export class EventRecorder<E> {
  private readonly pending: E[] = [];
  private sending: Promise<void> | undefined;
  private readonly send: (event: E) => Promise<void>;
  private readonly max: number;
  private readonly onDrop: () => void;

  constructor(send: (event: E) => Promise<void>, options: { max?: number; onDrop?: () => void } = {}) {
    this.send = send;
    this.max = options.max ?? 1000;
    this.onDrop = options.onDrop ?? (() => {});
  }

  get length(): number {
    return this.pending.length;
  }

  record(event: E): void {
    if (this.pending.length >= this.max) {
      this.onDrop();
      return;
    }
    this.pending.push(event);
    this.sending ??= this.drain();
  }

  private async drain(): Promise<void> {
    for (let next = this.pending.shift(); next !== undefined; next = this.pending.shift()) {
      // A failed write is not retried: events are hints, and the condition carries the truth.
      await this.send(next).catch(() => {});
    }
    this.sending = undefined;
  }

  /** Waits until what is queued has been sent, or `timeoutMs` passed. */
  async flush(timeoutMs: number): Promise<void> {
    if (!this.sending) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.sending, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

/** The object an event is about. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string | undefined;
}

/** An Event about `involved` from `component`, at `now`. Pure. */
export function objectEvent(
  involved: InvolvedObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  component: string,
  now: Date,
): CoreV1Event {
  return {
    metadata: { generateName: `${involved.name}.`, namespace: involved.namespace },
    involvedObject: {
      apiVersion: involved.apiVersion,
      kind: involved.kind,
      name: involved.name,
      namespace: involved.namespace,
      ...(involved.uid ? { uid: involved.uid } : {}),
    },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component },
    reportingComponent: component,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
