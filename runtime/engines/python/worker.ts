// One Python worker process: `python -u -m modelship._worker`, with requests on its fd 3 and replies on
// its fd 4 (frames of ./wire.ts), so the plugin's stdout and stderr (print(), C-level writes) stay its own:
// they become the runtime's log lines, with the worker and the request it was running. The worker runs
// one request at a time, in order; the pool may put the next ones in the pipe already (pipelining), so the
// worker never waits for this process to notice a reply. A worker that exits fails the request it was
// running; the ones still waiting in the pipe had not started and come back as NotStarted, to run elsewhere.
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

/** A call that was still waiting in the pipe when its worker ended: it never ran, so it may run elsewhere. */
export class NotStarted extends Error {
  constructor(how: string) {
    super(`the worker ended (${how}) before the request started`);
    this.name = 'NotStarted';
  }
}

interface Call {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  requestId: string | undefined;
}
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
  private readonly child: ChildProcess;
  private readonly input: Writable;
  /** Calls in the order they were sent; the first is the one running. */
  private readonly calls: Call[] = [];
  private ended: string | undefined;
  private dying = false;
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
        this.kill();
        this.fail(err as Error);
        return;
      }
      for (const m of messages) this.calls.shift()?.resolve(m as Reply);
    });
    this.lines(this.child.stdout as Readable, 'stdout');
    this.lines(this.child.stderr as Readable, 'stderr');
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.ended = `could not start ${o.python}: ${err.message}`;
        this.fail(this.crashed());
        resolve(this.ended);
      });
      this.child.once('exit', (code, signal) => {
        this.ended = signal ? `signal ${signal}` : `exit code ${code}`;
        this.fail(this.crashed());
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

  private crashed(): ModelshipError {
    return msError('MS_ERR_WORKER_CRASHED', { worker: this.index, how: this.ended ?? 'unknown', detail: '' });
  }

  /** The running call gets `err`; those behind it never started. */
  private fail(err: Error): void {
    const calls = this.calls.splice(0);
    calls[0]?.reject(err);
    for (const c of calls.slice(1)) c.reject(new NotStarted(this.ended ?? err.message));
  }

  /** Neither ended nor being killed: a worker on its way out takes no more calls. */
  get alive(): boolean {
    return this.ended === undefined && !this.dying;
  }

  /** The request id of the call running now, for the plugin's log lines. */
  get requestId(): string | undefined {
    return this.calls[0]?.requestId;
  }

  /**
   * Sends one message; resolves with its reply, in order behind the calls already sent. A message the wire
   * refuses (a client's `$nd` key) is rejected before it is queued, so every call still meets its own reply.
   */
  call(message: unknown, requestId?: string): Promise<Reply> {
    if (this.ended) return Promise.reject(this.crashed());
    let frame: Buffer;
    try {
      frame = encodeFrame(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Reply>((resolve, reject) => {
      this.calls.push({ resolve, reject, requestId });
      this.input.write(frame);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.dying = true;
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
