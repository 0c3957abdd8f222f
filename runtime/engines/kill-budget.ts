// How often the server's own timeout may kill a worker (a Python process, a worker thread) to stop a call that
// cannot be stopped otherwise: at most `perMinute` kills in any minute. Past the budget the call runs on and
// its answer is dropped, so a model whose calls all run long keeps its workers (and their init()) instead of
// restarting them back to back. Pure apart from the clock.
export class KillBudget {
  private readonly perMinute: number;
  private readonly now: () => number;
  private readonly kills: number[] = [];

  constructor(perMinute: number, now: () => number = Date.now) {
    this.perMinute = perMinute;
    this.now = now;
  }

  /** Kills in the last minute. */
  get recent(): number {
    this.forget();
    return this.kills.length;
  }

  private forget(): void {
    const since = this.now() - 60_000;
    while (this.kills.length > 0 && (this.kills[0] as number) <= since) this.kills.shift();
  }

  /** Milliseconds until the budget allows a kill again (0: now). */
  get waitMs(): number {
    this.forget();
    if (this.kills.length < this.perMinute) return 0;
    return Math.max(1, (this.kills[0] as number) + 60_000 - this.now());
  }

  /** Whether a kill is allowed now; takes it from the budget when it is. */
  take(): boolean {
    this.forget();
    if (this.kills.length >= this.perMinute) return false;
    this.kills.push(this.now());
    return true;
  }

  /**
   * A signal for a pool that kills its worker on abort: it aborts when `signal` does, as soon as the budget allows
   * (`onKill` is told), unless `done()` says the call has ended meanwhile. A call that hangs is therefore stopped
   * once the budget refills, never left holding its worker for good.
   */
  guard(signal: AbortSignal, onKill: () => void, done: () => boolean): AbortSignal {
    const guarded = new AbortController();
    const attempt = () => {
      if (done()) return;
      if (this.take()) {
        onKill();
        guarded.abort(signal.reason);
      } else setTimeout(attempt, this.waitMs).unref();
    };
    signal.addEventListener('abort', attempt, { once: true });
    return guarded.signal;
  }
}
