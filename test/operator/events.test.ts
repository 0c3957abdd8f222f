import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../../operator/kube/events.ts';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('EventRecorder', () => {
  it('sends one event at a time, in order, and never makes the caller wait', async () => {
    const sent: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const release: (() => void)[] = [];
    const rec = new EventRecorder<number>(async (n) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((r) => release.push(r));
      inFlight--;
      sent.push(n);
    });
    for (let i = 0; i < 5; i++) rec.record(i);
    expect(rec.length).toBe(4); // the first is being sent
    while (sent.length < 5) {
      await tick();
      release.shift()?.();
    }
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    expect(maxInFlight).toBe(1);
  });

  it('drops and counts what does not fit, and keeps going after a failed send', async () => {
    let drops = 0;
    const sent: number[] = [];
    let gate: () => void = () => {};
    const opened = new Promise<void>((r) => (gate = r));
    const rec = new EventRecorder<number>(
      async (n) => {
        await opened;
        if (n === 1) throw new Error('API down');
        sent.push(n);
      },
      { max: 3, onDrop: () => drops++ },
    );
    for (let i = 0; i < 6; i++) rec.record(i); // 0 in flight, 1–3 queued, 4 and 5 dropped
    expect(drops).toBe(2);
    gate();
    await rec.flush(1000);
    expect(sent).toEqual([0, 2, 3]);
    rec.record(9);
    await rec.flush(1000);
    expect(sent).toEqual([0, 2, 3, 9]);
  });

  it('bounds flush by its timeout', async () => {
    const rec = new EventRecorder<number>(() => new Promise(() => {}));
    rec.record(1);
    const t0 = Date.now();
    await rec.flush(50);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
