// Shared helpers of the benchmarks: child servers, load runs, timing.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface Server {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Spawns `node <script>` and waits for it to print its URL (LISTENING <url>) or, for the runtime, to be ready. */
export async function spawnServer(script: string, env: Record<string, string> = {}, readyPath?: string): Promise<Server> {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const url =
    env.MODELSHIP_PORT && env.MODELSHIP_PORT !== '0'
      ? `http://127.0.0.1:${env.MODELSHIP_PORT}`
      : await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${out}`)), 60_000);
          const onData = () => {
            const m = /LISTENING (\S+)/.exec(out) ?? /"url":"(http:\/\/[^"]+)"/.exec(out);
            if (m) {
              clearTimeout(timer);
              resolve(m[1] as string);
            }
          };
          child.stdout?.on('data', onData);
          child.stderr?.on('data', onData);
          child.on('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${out}`)));
        });
  if (readyPath) {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}:\n${out}`);
      return (await fetch(url + readyPath)).status === 200;
    }, 60_000).catch((err: Error) => {
      throw new Error(`${script} did not become ready: ${err.message}\n${out}`);
    });
  }
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

export interface LoadResult {
  rps: number;
  /** Requests completed in the run. */
  requests: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export async function load(opts: {
  url: string;
  method?: 'GET' | 'POST';
  body?: string | Buffer;
  /** Default for a body: JSON's content type. */
  headers?: Record<string, string>;
  seconds: number;
  connections?: number;
  rate?: number;
}): Promise<LoadResult> {
  const r = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    ...(opts.body ? { body: opts.body, headers: opts.headers ?? { 'content-type': 'application/json' } } : {}),
    connections: opts.connections ?? 100,
    pipelining: 1,
    duration: opts.seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
  });
  return {
    rps: Math.round(r.requests.average),
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

export const ratio = (a: number, b: number) => Number((a / b).toFixed(3));

/** CPU time (user + system) a process has used so far, in ms; Linux /proc. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state (field 3); utime, stime are 14, 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
