// Admission control, the kill budget and the batcher on their own, with fake timers and a fake clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Admission, admissionSettings } from '../../runtime/admission.ts';
import { Batcher } from '../../runtime/batching.ts';
import { callerTimeoutMs } from '../../runtime/dataplane.ts';
import { KillBudget } from '../../runtime/engines/kill-budget.ts';
import { isModelshipError, msError } from '../../runtime/errors.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const timeout = () => msError('MS_ERR_PREDICT_TIMEOUT', { ms: 1 });

function admission(concurrency: number, maxQueue: number, maxWaitMs: number) {
  const rejected: string[] = [];
  const a = new Admission('m', { concurrency, maxQueue, maxWaitMs }, timeout, { rejected: (r) => rejected.push(r) });
  return { a, rejected };
}

describe('Admission', () => {
  it('admits up to the concurrency at once, then queues, and lets the head in when a slot is given back', async () => {
    const { a } = admission(2, 10, 1000);
    expect(a.enter(Date.now() + 5000)).toBeUndefined();
    expect(a.enter(Date.now() + 5000)).toBeUndefined();
    const third = a.enter(Date.now() + 5000);
    expect(third).toBeInstanceOf(Promise);
    expect(a.waiting).toBe(1);
    a.leave(10);
    await expect(third).resolves.toBeUndefined();
    expect(a.inFlight).toBe(2);
    expect(a.waiting).toBe(0);
  });

  it('refuses at once when the queue is at its bound, with a Retry-After', () => {
    const { a, rejected } = admission(1, 2, 10_000);
    a.enter(Date.now() + 5000);
    void a.enter(Date.now() + 5000);
    void a.enter(Date.now() + 5000);
    let err: unknown;
    try {
      a.enter(Date.now() + 5000);
    } catch (e) {
      err = e;
    }
    expect(isModelshipError(err) && err.code).toBe('MS_ERR_MODEL_OVERLOADED');
    expect(isModelshipError(err) && err.statusCode).toBe(503);
    expect(isModelshipError(err) && err.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(rejected).toEqual(['full']);
  });

  it('refuses a request whose expected wait (place × service time ÷ concurrency) exceeds ¾ of the bound', async () => {
    const { a, rejected } = admission(2, 1000, 100);
    a.enter(Date.now() + 5000);
    a.enter(Date.now() + 5000);
    a.leave(40); // service time 40 ms
    a.enter(Date.now() + 5000);
    // Queue places 0..2 expect (p+1)·40/2 = 20..60 ms, within 75: three fit, the fourth (80 ms) does not.
    const queued = Array.from({ length: 3 }, () => a.enter(Date.now() + 5000));
    expect(queued.every((p) => p instanceof Promise)).toBe(true);
    expect(() => a.enter(Date.now() + 5000)).toThrow(/expected wait of 80 ms is too close to 100 ms/);
    expect(rejected).toEqual(['full']);
    for (const p of queued) p?.catch(() => {});
  });

  it('under load, expects the wait from the rate requests really leave at', async () => {
    const { a } = admission(4, 1000, 1000);
    for (let i = 0; i < 4; i++) a.enter(Date.now() + 60_000);
    a.leave(1); // a service time of 1 ms would promise 0.25 ms per place...
    a.enter(Date.now() + 60_000);
    const waiting = Array.from({ length: 50 }, () => a.enter(Date.now() + 60_000));
    // ...but while they wait, one leaves every 20 ms (the CPUs are shared): that is the rate the queue drains at.
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(20);
      a.leave(1);
    }
    // 30 waiting: places 30..36 expect 31 × 20 = 620 … 740 ms, within ¾ of 1000; place 37 expects 760.
    let admitted = 0;
    try {
      for (;;) {
        (a.enter(Date.now() + 60_000) as Promise<void>).catch(() => {});
        admitted++;
      }
    } catch (err) {
      expect(String(err)).toMatch(/expected wait of 760 ms/);
    }
    expect(admitted).toBe(7);
    for (const p of waiting) p?.catch(() => {});
  });

  it('answers 503 to a request that waited the bound, and the caller timeout to one whose caller gave up first', async () => {
    const { a, rejected } = admission(1, 10, 200);
    a.enter(Date.now() + 5000);
    const patient = a.enter(Date.now() + 5000) as Promise<void>;
    const hasty = a.enter(Date.now() + 50) as Promise<void>;
    const outcomes: string[] = [];
    patient.catch((e) => outcomes.push(`patient ${e.code}`));
    hasty.catch((e) => outcomes.push(`hasty ${e.code}`));
    await vi.advanceTimersByTimeAsync(100);
    expect(outcomes).toEqual(['hasty MS_ERR_PREDICT_TIMEOUT']);
    await vi.advanceTimersByTimeAsync(150);
    expect(outcomes).toEqual(['hasty MS_ERR_PREDICT_TIMEOUT', 'patient MS_ERR_MODEL_OVERLOADED']);
    expect(rejected).toEqual(['wait']);
    expect(a.waiting).toBe(0);
    // The slot holder is unaffected, and a new request gets its slot when it leaves.
    a.leave(1);
    expect(a.enter(Date.now() + 5000)).toBeUndefined();
  });

  it("answers the caller's timeout at once when its deadline comes before its expected turn", () => {
    const { a, rejected } = admission(1, 100, 10_000);
    a.enter(Date.now() + 5000);
    a.leave(100);
    a.enter(Date.now() + 5000);
    expect(() => a.enter(Date.now() + 50)).toThrow(/did not finish within/);
    expect(a.enter(Date.now() + 500)).toBeInstanceOf(Promise);
    expect(rejected).toEqual([]);
  });

  it('refuses early (before a body is read) exactly what enter would refuse', () => {
    const { a, rejected } = admission(1, 2, 10_000);
    expect(a.refuseEarly()).toBeUndefined();
    a.enter(Date.now() + 5000);
    expect(a.refuseEarly()).toBeUndefined(); // the queue is empty: it would wait
    void a.enter(Date.now() + 5000);
    void a.enter(Date.now() + 5000);
    expect(a.refuseEarly()?.code).toBe('MS_ERR_MODEL_OVERLOADED');
    expect(rejected).toEqual(['full']);
  });

  it('takes its bounds from the configuration, else from the engine', () => {
    const configured = { maxConcurrency: 0, maxQueue: 0, maxQueueWaitMs: 500 };
    expect(admissionSettings(8, configured, 64)).toEqual({ concurrency: 8, maxQueue: 1024, maxWaitMs: 500 });
    expect(admissionSettings(undefined, configured, 64)).toEqual({ concurrency: 64, maxQueue: 1024, maxWaitMs: 500 });
    expect(admissionSettings(2, configured, 64, 16).concurrency).toBe(32);
    expect(admissionSettings(8, { maxConcurrency: 3, maxQueue: 7, maxQueueWaitMs: 9 }, 64)).toEqual({
      concurrency: 3,
      maxQueue: 7,
      maxWaitMs: 9,
    });
  });
});

describe('KillBudget', () => {
  it('allows perMinute kills in any minute', () => {
    const b = new KillBudget(2);
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(true);
    expect(b.take()).toBe(false);
    expect(b.recent).toBe(2);
    vi.advanceTimersByTime(60_001);
    expect(b.recent).toBe(0);
    expect(b.take()).toBe(true);
  });

  it('guards a signal: it aborts while the budget lasts, and a call still running when the budget refills then', () => {
    const b = new KillBudget(1);
    const kills: number[] = [];
    const first = new AbortController();
    const second = new AbortController();
    const third = new AbortController();
    let thirdDone = false;
    const g1 = b.guard(
      first.signal,
      () => kills.push(1),
      () => false,
    );
    const g2 = b.guard(
      second.signal,
      () => kills.push(2),
      () => false,
    );
    const g3 = b.guard(
      third.signal,
      () => kills.push(3),
      () => thirdDone,
    );
    first.abort(new Error('server timeout'));
    second.abort(new Error('server timeout'));
    third.abort(new Error('server timeout'));
    expect(g1.aborted).toBe(true);
    expect([g2.aborted, g3.aborted]).toEqual([false, false]);
    expect(b.waitMs).toBe(60_000);
    thirdDone = true; // the third call ended on its own meanwhile: never killed
    vi.advanceTimersByTime(60_000);
    expect(g2.aborted).toBe(true);
    expect(g3.aborted).toBe(false);
    expect(kills).toEqual([1, 2]);
  });
});

describe('callerTimeoutMs', () => {
  it('reads a positive whole number of ms, else nothing', () => {
    expect(callerTimeoutMs('250')).toBe(250);
    expect(callerTimeoutMs(40)).toBe(40);
    for (const bad of ['0', '-5', '1.5', 'soon', '', undefined, ['5']]) expect(callerTimeoutMs(bad)).toBeUndefined();
  });
});

describe('Batcher', () => {
  it('sends a batch when it is full or after maxLatencyMs, each request getting its own rows', async () => {
    const calls: number[] = [];
    const b = new Batcher(
      { maxBatchSize: 3, maxLatencyMs: 10 },
      async (_id, rows) => {
        calls.push(rows.length);
        return { outputs: rows.map((r) => ({ y: (r.x as number) * 2 })) };
      },
      timeout,
    );
    const far = Date.now() + 10_000;
    const full = [1, 2, 3].map((x) => b.submit(`r${x}`, [{ x }], undefined, far));
    expect(calls).toEqual([3]);
    expect((await Promise.all(full)).map((p) => p.outputs[0]?.y)).toEqual([2, 4, 6]);
    const late = b.submit('r4', [{ x: 4 }], undefined, far);
    await vi.advanceTimersByTimeAsync(9);
    expect(calls).toEqual([3]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([3, 1]);
    expect((await late).outputs[0]?.y).toBe(8);
  });

  it('leaves out a request whose caller gave up while it waited, and runs the others', async () => {
    const calls: number[][] = [];
    const b = new Batcher(
      { maxBatchSize: 8, maxLatencyMs: 20 },
      async (_id, rows) => {
        calls.push(rows.map((r) => r.x as number));
        return { outputs: rows.map(() => ({ y: 1 })) };
      },
      timeout,
    );
    const gone = b.submit('a', [{ x: 1 }], undefined, Date.now() + 5);
    const stays = b.submit('b', [{ x: 2 }], undefined, Date.now() + 10_000);
    const seen = gone.catch((e) => e.code);
    await vi.advanceTimersByTimeAsync(20);
    expect(await seen).toBe('MS_ERR_PREDICT_TIMEOUT');
    expect(calls).toEqual([[2]]);
    expect((await stays).outputs).toEqual([{ y: 1 }]);
  });

  it('runs each request alone again when the batch fails for one caller mistake', async () => {
    const b = new Batcher(
      { maxBatchSize: 2, maxLatencyMs: 5 },
      async (_id, rows) => {
        if (rows.some((r) => (r.x as number) < 0)) throw msError('MS_ERR_INPUT_INVALID', { detail: 'negative x' });
        return { outputs: rows.map((r) => ({ y: r.x as number })) };
      },
      timeout,
    );
    const far = Date.now() + 10_000;
    const [good, bad] = [b.submit('g', [{ x: 1 }], undefined, far), b.submit('b', [{ x: -1 }], undefined, far)];
    expect((await good).outputs).toEqual([{ y: 1 }]);
    await expect(bad).rejects.toThrow(/negative x/);
  });
});
