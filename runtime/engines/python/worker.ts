// One Python worker process: `python -u -m modelship._worker`, with requests on its fd 3 and replies on
// its fd 4 (frames of ./wire.ts), so the plugin's stdout and stderr (print(), C-level writes) stay its own:
// they become the runtime's log lines, with the worker and the request it was running. One request at a
// time; a worker that exits fails only the request it held.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { type ErrorCode, ERRORS, type ModelshipError, msError } from '../../errors.ts';
import { encodeFrame, FrameReader } from './wire.ts';

/** A worker's answer: `ok` with fields per op, or a coded failure with the template's params. */
export type Reply =
  | ({ ok: true } & Record<string, unknown>)
  | { ok: false; code: string; params?: Record<string, string | number>; trace?: string[] };

export interface WorkerSpawn {
  python: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  index: number;
  log: Logger;
  maxFrameBytes: number;
}

const MAX_LINE = 8192;

/** A worker's failure as the runtime's error (a code Python made up is an internal error). */
export function replyError(reply: Extract<Reply, { ok: false }>): ModelshipError {
  const code = (reply.code in ERRORS ? reply.code : 'MS_ERR_SERVER_INTERNAL') as ErrorCode;
  const params = reply.params ?? {};
  return msError(code, code === reply.code ? params : { detail: `${reply.code}: ${String(params.detail ?? '')}` });
}

export class PythonWorker {
  readonly index: number;
  readonly pid: number | undefined;
  /** Resolves with how the process ended ("exit code 3", "signal SIGSEGV"). */
  readonly exited: Promise<string>;
  /** The request id of the call in progress, for the plugin's log lines. */
  requestId: string | undefined;
  private readonly child: ChildProcess;
  private readonly input: Writable;
  private pending: { resolve: (r: Reply) => void; reject: (e: Error) => void } | undefined;
  private ended: string | undefined;
  private readonly log: Logger;

  constructor(o: WorkerSpawn) {
    this.index = o.index;
    this.log = o.log;
    this.child = spawn(o.python, ['-u', '-m', 'modelship._worker'], {
      cwd: o.cwd,
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    this.input = this.child.stdio[3] as Writable;
    const output = this.child.stdio[4] as Readable;
    // A write to a worker that died is reported by its exit, not as a stream error.
    this.input.on('error', () => {});
    output.on('error', () => {});
    const reader = new FrameReader(o.maxFrameBytes);
    output.on('data', (chunk: Buffer) => {
      let messages: unknown[];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        this.kill();
        return;
      }
      for (const m of messages) {
        const p = this.pending;
        this.pending = undefined;
        p?.resolve(m as Reply);
      }
    });
    this.lines(this.child.stdout as Readable, 'stdout');
    this.lines(this.child.stderr as Readable, 'stderr');
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.ended = `could not start ${o.python}: ${err.message}`;
        this.fail(msError('MS_ERR_WORKER_CRASHED', { worker: this.index, how: this.ended, detail: '' }));
        resolve(this.ended);
      });
      this.child.once('exit', (code, signal) => {
        this.ended = signal ? `signal ${signal}` : `exit code ${code}`;
        this.fail(msError('MS_ERR_WORKER_CRASHED', { worker: this.index, how: this.ended, detail: '' }));
        resolve(this.ended);
      });
    });
  }

  private lines(stream: Readable, name: 'stdout' | 'stderr'): void {
    const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => {
      const text = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
      const fields = { worker: this.index, stream: name, ...(this.requestId ? { requestId: this.requestId } : {}) };
      if (name === 'stdout') this.log.info(fields, text);
      else this.log.warn(fields, text);
    });
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Sends one message and waits for its reply (or the worker's end). */
  call(message: unknown, requestId?: string): Promise<Reply> {
    if (this.ended) return Promise.reject(msError('MS_ERR_WORKER_CRASHED', { worker: this.index, how: this.ended, detail: '' }));
    if (this.pending) return Promise.reject(msError('MS_ERR_SERVER_INTERNAL', { detail: `worker ${this.index} is busy` }));
    this.requestId = requestId;
    return new Promise<Reply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.input.write(encodeFrame(message));
    }).finally(() => {
      this.requestId = undefined;
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.ended === undefined) this.child.kill(signal);
  }

  /** Asks the worker to exit; kills it if it has not within `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.ended !== undefined) return;
    this.input.end(encodeFrame({ op: 'exit' }));
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
