import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ComponentStartError,
  freePorts,
  isAlive,
  processStartTime,
  startProcess,
  stopProcess,
  tailFile,
  waitReady,
} from '../../env/process.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proc-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('process helpers', () => {
  it('hands out distinct free ports', async () => {
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) expect(p).toBeGreaterThan(0);
  });

  it('starts a detached process with its output in its log, and stops it with SIGTERM', async () => {
    const rec = startProcess({
      name: 'sleeper',
      command: process.execPath,
      args: ['-e', "console.log('hello log'); setInterval(() => {}, 1000)"],
      logFile: join(dir, 'sleeper.log'),
    });
    expect(rec.startTime).not.toBe('');
    await waitReady(rec, async () => (await tailFile(rec.logFile)).includes('hello log'), 10_000);
    expect(isAlive(rec)).toBe(true);
    await stopProcess(rec, 5000);
    expect(isAlive(rec)).toBe(false);
  });

  it('does not signal a different process that holds a recorded PID', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const real = processStartTime(pid);
    expect(real).toBeDefined();
    // The same PID with another start time stands for a recycled PID: it must be treated as gone.
    const stale = { name: 'stale', pid, startTime: `${Number(real) - 1}`, command: [], logFile: '' };
    expect(isAlive(stale)).toBe(false);
    await stopProcess(stale, 100);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
    child.kill('SIGKILL');
  });

  it('names the component, its command and its last log lines when it exits before ready', async () => {
    const logFile = join(dir, 'crash.log');
    await writeFile(logFile, '');
    const rec = startProcess({
      name: 'crasher',
      command: process.execPath,
      args: ['-e', "console.error('fatal: port already in use'); process.exit(3)"],
      logFile,
    });
    const err = await waitReady(rec, async () => false, 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComponentStartError);
    const msg = (err as Error).message;
    expect(msg).toContain('crasher did not start: the process exited');
    expect(msg).toContain(process.execPath);
    expect(msg).toContain('fatal: port already in use');
  });

  it('reports a timeout with the last probe error', async () => {
    const rec = startProcess({
      name: 'slow',
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      logFile: join(dir, 'slow.log'),
    });
    try {
      const err = await waitReady(
        rec,
        async () => {
          throw new Error('connection refused');
        },
        600,
      ).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/slow did not start: not ready after 0.6 s \(last probe error: connection refused\)/);
    } finally {
      await stopProcess(rec, 2000);
    }
  });
});
