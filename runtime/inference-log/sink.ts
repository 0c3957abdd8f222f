// A bounded, batching buffer in front of a Kafka producer. Requests only ever call offer(), which never waits:
// it either takes the record (counting its bytes against the bound) or drops it and counts the drop. One
// sender drains the buffer in batches; when Kafka fails it keeps the records and retries with exponential
// backoff, so an outage costs the records that do not fit, never a prediction. close() flushes within a bound.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { UnknownTopicError } from '../../common/kafka.ts';

export interface OutgoingRecord {
  topic: string;
  key: string;
  value: string;
  bytes: number;
}

/** Delivers one batch; rejects when any of it was not written. */
export type SendBatch = (records: readonly OutgoingRecord[]) => Promise<void>;

export type DropReason = 'buffer_full' | 'too_large' | 'topic_not_found' | 'shutdown' | 'not_allowed';

export interface SinkObserver {
  sent(count: number): void;
  dropped(reason: DropReason, count: number): void;
  sendFailed(): void;
}

export interface SinkOptions {
  send: SendBatch;
  log: Logger;
  observer: SinkObserver;
  /** Bound on the bytes waiting (keys + values). */
  bufferBytes: number;
  /** A single record larger than this is dropped (Kafka's default max.message.bytes is ~1 MB). */
  maxRecordBytes?: number;
  /** How long the first record waits for others to join its batch. */
  lingerMs?: number;
  maxBatchRecords?: number;
  maxBatchBytes?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class RecordSink {
  private readonly opts: Required<Omit<SinkOptions, 'send' | 'log' | 'observer'>>;
  private readonly send: SendBatch;
  private readonly log: Logger;
  private readonly observer: SinkObserver;
  private queue: OutgoingRecord[] = [];
  private head = 0;
  private bytes = 0;
  private sending = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastWarn = 0;
  private closed = false;
  private readonly abandon = new AbortController();
  /** Cuts a backoff short (at close, to flush at once). */
  private wake: AbortController | undefined;
  private idle: (() => void)[] = [];

  constructor(options: SinkOptions) {
    this.send = options.send;
    this.log = options.log;
    this.observer = options.observer;
    this.opts = {
      bufferBytes: options.bufferBytes,
      maxRecordBytes: options.maxRecordBytes ?? 1_000_000,
      lingerMs: options.lingerMs ?? 20,
      maxBatchRecords: options.maxBatchRecords ?? 2_000,
      maxBatchBytes: options.maxBatchBytes ?? 900_000,
      minBackoffMs: options.minBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 5_000,
    };
  }

  /** Records waiting to be sent. */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** Bytes waiting to be sent. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Takes the record for sending, or drops it (counted). Never waits. */
  offer(topic: string, key: string, value: string): boolean {
    // UTF-16 length is within 3x of the UTF-8 bytes; exact enough for a memory bound and far cheaper.
    const bytes = key.length + value.length;
    if (this.closed) {
      this.observer.dropped('shutdown', 1);
      return false;
    }
    if (bytes > this.opts.maxRecordBytes) {
      this.observer.dropped('too_large', 1);
      return false;
    }
    if (this.bytes + bytes > this.opts.bufferBytes) {
      this.observer.dropped('buffer_full', 1);
      return false;
    }
    this.queue.push({ topic, key, value, bytes });
    this.bytes += bytes;
    if (!this.sending && !this.timer) {
      this.timer = setTimeout(this.kick, this.opts.lingerMs);
      this.timer.unref();
    }
    return true;
  }

  private readonly kick = () => {
    this.timer = undefined;
    void this.drain();
  };

  private batch(): OutgoingRecord[] {
    const end = Math.min(this.queue.length, this.head + this.opts.maxBatchRecords);
    let bytes = 0;
    let i = this.head;
    for (; i < end; i++) {
      bytes += (this.queue[i] as OutgoingRecord).bytes;
      if (bytes > this.opts.maxBatchBytes && i > this.head) break;
    }
    return this.queue.slice(this.head, i);
  }

  private consume(records: readonly OutgoingRecord[]): void {
    this.head += records.length;
    for (const r of records) this.bytes -= r.bytes;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private dropTopic(topic: string): number {
    const kept: OutgoingRecord[] = [];
    let dropped = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const r = this.queue[i] as OutgoingRecord;
      if (r.topic === topic) {
        dropped++;
        this.bytes -= r.bytes;
      } else kept.push(r);
    }
    this.queue = kept;
    this.head = 0;
    return dropped;
  }

  private warn(fields: Record<string, unknown>, msg: string): void {
    // At most one line per 30 s: an outage must not flood the log.
    const now = Date.now();
    if (now - this.lastWarn < 30_000) return;
    this.lastWarn = now;
    this.log.warn(fields, msg);
  }

  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.size > 0 && !this.abandon.signal.aborted) {
        const batch = this.batch();
        try {
          await this.send(batch);
          // Abandoned while the batch was in flight: close() already accounted for every record.
          if (this.abandon.signal.aborted) break;
          this.consume(batch);
          this.observer.sent(batch.length);
          if (this.failures > 0) this.log.info({ afterFailures: this.failures }, 'inference log: Kafka reachable again');
          this.failures = 0;
        } catch (err) {
          if (err instanceof UnknownTopicError) {
            const missing = err.topic;
            const n = this.dropTopic(missing);
            this.observer.dropped('topic_not_found', n);
            this.warn({ topic: missing, dropped: n }, 'inference log: topic does not exist; its records are dropped');
            continue;
          }
          this.failures++;
          this.observer.sendFailed();
          const delay = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(this.failures - 1, 16));
          this.warn(
            { err: (err as Error).message, waiting: this.size, bytes: this.bytes, retryInMs: delay },
            'inference log: sending to Kafka failed; keeping the records and retrying',
          );
          this.wake = new AbortController();
          await sleep(delay, undefined, { ref: false, signal: AbortSignal.any([this.abandon.signal, this.wake.signal]) }).catch(() => {});
          this.wake = undefined;
        }
      }
    } finally {
      this.sending = false;
      if (this.size === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Stops taking records and sends what is waiting, for at most `timeoutMs`; what is left is dropped. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.size > 0) {
      const flushed = new Promise<void>((resolve) => this.idle.push(resolve));
      this.wake?.abort();
      void this.drain();
      const timedOut = await Promise.race([flushed.then(() => false), sleep(timeoutMs, true, { ref: false })]);
      if (timedOut) this.abandon.abort();
    }
    this.abandon.abort();
    const left = this.size;
    if (left > 0) {
      this.observer.dropped('shutdown', left);
      this.log.warn({ dropped: left, timeoutMs }, 'inference log: flush bound reached at shutdown; records dropped');
      this.consume(this.queue.slice(this.head));
    }
  }
}
