// A bundle's requirements.txt, installed by uv into an environment keyed by sha256(Python version,
// platform, index, wheels, requirements) in a cache directory (an emptyDir, or a volume shared by the
// node's pods). Built beside its final place and renamed into it under a lock, so a half-built
// environment is never used and two pods on a node install it once. `wheels/` in the bundle installs with
// no index (air-gapped clusters). The environment is a plain `--target` directory put first on the
// workers' PYTHONPATH, over the image's base stack.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { msError } from '../../errors.ts';

export const REQUIREMENTS_FILE = 'requirements.txt';
export const WHEELS_DIR = 'wheels';
const COMPLETE = '.modelship-complete';
const TAIL_LINES = 12;

export interface DepsOptions {
  bundleDir: string;
  python: string;
  /** `python --version`-like identity of the interpreter: version, platform, ABI. */
  pythonIdentity: string;
  uv: string;
  envDir: string;
  indexUrl: string | undefined;
  timeoutMs: number;
  log: Logger;
}

/** The cache key of an environment. Pure. */
export function envKey(parts: { pythonIdentity: string; indexUrl: string | undefined; wheels: string[]; requirements: string }): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([parts.pythonIdentity, parts.indexUrl ?? '', parts.wheels, parts.requirements]));
  return h.digest('hex');
}

/** The last lines of an installer's output, for the error message. Pure. */
export function tail(text: string, lines = TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function wheelList(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const names = (await readdir(dir)).filter((n) => n.endsWith('.whl') || n.endsWith('.tar.gz')).sort();
  return Promise.all(
    names.map(
      async (n) =>
        `${n}:${createHash('sha256')
          .update(await readFile(join(dir, n)))
          .digest('hex')}`,
    ),
  );
}

/** Takes `lock` (a file created exclusively); waits while another process holds it. A lock older than the
 * install timeout is left over from a killed process and is taken over. */
async function acquire(lock: string, final: string, timeoutMs: number): Promise<(() => Promise<void>) | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lock, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (existsSync(join(final, COMPLETE))) return undefined;
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > timeoutMs) await rm(lock, { force: true });
    if (Date.now() > deadline) {
      throw msError('MS_ERR_PYTHON_DEPS_FAILED', {
        detail: `waited ${Math.round(timeoutMs / 1000)} s for another install of this environment`,
      });
    }
    await sleep(200);
  }
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const add = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: `${output}${err.message}`, timedOut });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

/** The environment for the bundle's requirements.txt (built if missing), or undefined without one. */
export async function requirementsEnv(o: DepsOptions): Promise<string | undefined> {
  const reqFile = join(o.bundleDir, REQUIREMENTS_FILE);
  if (!existsSync(reqFile)) return undefined;
  const requirements = await readFile(reqFile, 'utf8');
  const wheelsDir = join(o.bundleDir, WHEELS_DIR);
  const wheels = await wheelList(wheelsDir);
  const key = envKey({ pythonIdentity: o.pythonIdentity, indexUrl: wheels.length ? undefined : o.indexUrl, wheels, requirements });
  const final = join(o.envDir, key);
  if (existsSync(join(final, COMPLETE))) {
    o.log.info({ env: final }, 'requirements.txt: environment found in the cache');
    return final;
  }
  await mkdir(o.envDir, { recursive: true });
  const release = await acquire(`${final}.lock`, final, o.timeoutMs);
  if (!release) return final;
  try {
    if (existsSync(join(final, COMPLETE))) return final;
    const building = `${final}.tmp-${randomBytes(4).toString('hex')}`;
    // Bytecode compiled once, here: the workers run with PYTHONDONTWRITEBYTECODE, so without it a large stack
    // (TensorFlow: ~12 CPU-s) is compiled again by every worker at every start.
    const args = ['pip', 'install', '--quiet', '--compile-bytecode', '--python', o.python, '--target', building, '-r', reqFile];
    if (wheels.length) args.push('--no-index', '--find-links', wheelsDir);
    else if (o.indexUrl) args.push('--index-url', o.indexUrl);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: o.envDir,
      UV_CACHE_DIR: join(o.envDir, '.uv-cache'),
      UV_PYTHON_DOWNLOADS: 'never',
      UV_NO_PROGRESS: '1',
      ...(process.env.SSL_CERT_FILE ? { SSL_CERT_FILE: process.env.SSL_CERT_FILE } : {}),
    };
    const t0 = performance.now();
    // The index's host only: an index URL may carry credentials.
    const index = wheels.length ? 'wheels/' : o.indexUrl ? new URL(o.indexUrl).host : 'uv default (PyPI)';
    o.log.info({ env: final, index }, 'requirements.txt: installing with uv');
    const r = await run(o.uv, args, env, o.timeoutMs);
    if (r.code !== 0) {
      await rm(building, { recursive: true, force: true });
      const why = r.timedOut
        ? `uv did not finish within ${Math.round(o.timeoutMs / 1000)} s`
        : r.code === -1
          ? `cannot run ${o.uv} (set MODELSHIP_UV, or use the modelship/runtime-python image): ${tail(r.output, 2)}`
          : tail(r.output);
      throw msError('MS_ERR_PYTHON_DEPS_FAILED', { detail: why });
    }
    await writeFile(join(building, COMPLETE), `${requirements}\n`);
    await rm(final, { recursive: true, force: true });
    await rename(building, final);
    o.log.info({ env: final, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)) }, 'requirements.txt: installed');
    return final;
  } finally {
    await release();
  }
}
