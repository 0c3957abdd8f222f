// Starting, watching and stopping the environment's processes. Each runs detached (it outlives `env:up`),
// logs to a file of its own, and is remembered by PID plus its kernel start time, so `env:down` never signals
// a process that merely reuses a PID.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface ProcessRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: the process's start time in clock ticks since boot. */
  startTime: string;
  command: string[];
  logFile: string;
  dataDir?: string;
}

export class ComponentStartError extends Error {
  constructor(name: string, command: string[], logFile: string, reason: string, tail: string) {
    super(`${name} did not start: ${reason}\ncommand: ${command.join(' ')}\nlog: ${logFile}\n--- last lines of its log ---\n${tail}`);
    this.name = 'ComponentStartError';
  }
}

/** A free TCP port on 127.0.0.1, found by binding port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Distinct free ports (a port handed out once is not handed out again by this process). */
const handedOut = new Set<number>();
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      ports.push(p);
    }
  }
  return ports;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it follow the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

/** True when the recorded process is still the one we started. */
export function isAlive(rec: Pick<ProcessRecord, 'pid' | 'startTime'>): boolean {
  const st = processStartTime(rec.pid);
  if (st === undefined || st !== rec.startTime) return false;
  try {
    const state = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  dataDir?: string;
}

export function startProcess(opts: StartOptions): ProcessRecord {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${opts.command}`);
    child.unref();
    const startTime = processStartTime(child.pid) ?? '';
    return {
      name: opts.name,
      pid: child.pid,
      startTime,
      command: [opts.command, ...opts.args],
      logFile: opts.logFile,
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    };
  } finally {
    closeSync(fd);
  }
}

export async function tailFile(file: string, lines = 30): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf
        .toString('utf8')
        .split('\n')
        .slice(-lines - 1)
        .join('\n');
    } finally {
      await fh.close();
    }
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns true. Fails with a ComponentStartError naming the component, its command and
 * the last lines of its log when the process exits or the timeout passes.
 */
export async function waitReady(rec: ProcessRecord, probe: () => Promise<boolean>, timeoutMs: number, what = 'ready'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!isAlive(rec)) {
      throw new ComponentStartError(rec.name, rec.command, rec.logFile, 'the process exited', await tailFile(rec.logFile));
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(250);
  }
  throw new ComponentStartError(
    rec.name,
    rec.command,
    rec.logFile,
    `not ${what} after ${timeoutMs / 1000} s${lastError ? ` (last probe error: ${lastError})` : ''}`,
    await tailFile(rec.logFile),
  );
}

/** SIGTERM, then SIGKILL after `graceMs`; only if the PID still belongs to the process we started. */
export async function stopProcess(rec: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isAlive(rec)) return;
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) return;
    await sleep(100);
  }
  if (isAlive(rec)) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    while (isAlive(rec)) await sleep(50);
  }
}
