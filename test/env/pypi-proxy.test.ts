// The PyPI caching proxy of env/pypi-proxy.ts, for real: devpi-server built from the committed lock, uv
// installing through it from 127.0.0.1, its cache surviving a restart and serving it with no upstream.
// Needs no cluster, so it runs in the unit project; it does need PyPI (the proxy's upstream) and python3.
// MODELSHIP_PYPI_PROXY_BUILD=<dir> keeps the built venv and uv there and reuses them on later runs.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessRecord, freePorts, isAlive, stopProcess } from '../../env/process.ts';
import { buildPypiProxy, pypiProxyHealthy, startPypiProxy } from '../../env/pypi-proxy.ts';
import { UV_VERSION } from '../../env/versions.ts';

const reuse = process.env.MODELSHIP_PYPI_PROXY_BUILD;
let build: string;
let scratch: string;
let cacheDir: string;
let proxy: { process: ProcessRecord; url: string } | undefined;
const times: Record<string, number> = {};

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await f();
  } finally {
    times[what] = Date.now() - t;
  }
}

interface Ran {
  code: number | null;
  out: string;
  ms: number;
}

/** Runs a command with a hard time limit (killed after it), collecting its output. */
function runBounded(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - start });
    });
  });
}

/** `uv pip install` from the proxy alone: no config files, no uv cache (each install goes to the proxy). */
function uvInstall(spec: string, target: string, opts: { retries?: number } = {}): Promise<Ran> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UV_')) env[k] = v;
  Object.assign(env, { UV_PYTHON_DOWNLOADS: 'never', UV_HTTP_RETRIES: String(opts.retries ?? 3), NO_PROXY: '127.0.0.1,localhost' });
  const args = ['pip', 'install', '--no-config', '--no-cache', '--index-url', proxy!.url, '--target', target];
  return runBounded(join(build, 'uv', 'bin', 'uv'), [...args, '--python', join(build, 'venv', 'bin', 'python'), spec], env, 90_000);
}

/** The addresses `pid` listens on (TCP), from /proc: its socket inodes matched against /proc/net/tcp{,6}. */
function listening(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [addr, port] = f[1]!.split(':') as [string, string];
      const ip =
        table === 'tcp'
          ? (addr.match(/../g) ?? [])
              .reverse()
              .map((b) => Number.parseInt(b, 16))
              .join('.')
          : `[${addr}]`;
      out.push(`${ip}:${Number.parseInt(port, 16)}`);
    }
  }
  return out;
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  const entries = await readdir(dir, { recursive: true });
  const hit = entries.find((e) => e.endsWith(`/${name}`) || e === name);
  return hit === undefined ? undefined : join(dir, hit);
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'pypi-proxy-test-'));
  build = reuse ?? join(scratch, 'build');
  cacheDir = join(scratch, 'cache');
  if (!existsSync(join(build, 'venv', 'bin', 'devpi-server')) || !existsSync(join(build, 'uv', 'bin', 'uv'))) {
    await mkdir(build, { recursive: true });
    const probe = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
    const python = probe.stdout.trim();
    expect(python, `python3 is needed: ${probe.stderr}`).not.toBe('');
    const log = createWriteStream(join(build, 'build.log'), { flags: 'a' });
    // The uv of env/build.ts's python component, installed the same way; its cache stays in the build dir.
    const savedCache = process.env.MODELSHIP_CACHE;
    process.env.MODELSHIP_CACHE = join(build, 'modelship-cache');
    try {
      await timed('uv install', async () => {
        const pip = await runBounded(
          python,
          [
            '-m',
            'pip',
            'install',
            '--quiet',
            '--disable-pip-version-check',
            '--no-input',
            '--target',
            join(build, 'uv'),
            `uv==${UV_VERSION}`,
          ],
          { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' },
          180_000,
        );
        expect(pip.code, pip.out).toBe(0);
      });
      await timed('venv build', () => buildPypiProxy(build, { python, uv: join(build, 'uv', 'bin', 'uv') }, log));
    } finally {
      if (savedCache === undefined) delete process.env.MODELSHIP_CACHE;
      else process.env.MODELSHIP_CACHE = savedCache;
      await new Promise((r) => log.end(r));
    }
  }
}, 300_000);

afterAll(async () => {
  if (proxy) await stopProcess(proxy.process, 10_000);
  console.log(`pypi-proxy test times (ms): ${JSON.stringify(times)}`);
  await rm(scratch, { recursive: true, force: true });
});

async function start(offline: boolean) {
  const [port] = await freePorts(1);
  proxy = await startPypiProxy({
    venv: join(build, 'venv'),
    port: port!,
    host: '127.0.0.1',
    logFile: join(scratch, 'pypi-proxy.log'),
    cacheDir,
    offline,
    timeoutMs: 90_000,
  });
  return port!;
}

describe('PyPI caching proxy (devpi-server)', () => {
  it('starts on the given address only, and uv installs a package through it, whose file it keeps', async () => {
    const port = await timed('first start (init)', () => start(false));
    expect(proxy!.url).toBe(`http://127.0.0.1:${port}/root/pypi/+simple/`);
    expect(listening(proxy!.process.pid)).toEqual([`127.0.0.1:${port}`]);
    expect(await pypiProxyHealthy(proxy!.url)).toBe(true);

    const target = join(scratch, 'target-1');
    const r = await timed('first install', () => uvInstall('six==1.16.0', target));
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(target, 'six.py'))).toBe(true);
    // The wheel is in devpi's file store, under the cache dir.
    expect(await findFile(cacheDir, 'six-1.16.0-py2.py3-none-any.whl')).toMatch(/\/server\/\+files\/root\/pypi\/\+f\//);
  }, 120_000);

  it('fails fast and clearly for a package that does not exist', async () => {
    const r = await uvInstall('modelship-no-such-package-4f2a9c==1.0', join(scratch, 'target-missing'));
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/modelship-no-such-package-4f2a9c was not found in the package registry/);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);

  it('after a restart in offline mode, installs the same package from its cache alone', async () => {
    const old = proxy!.process;
    await stopProcess(old, 10_000);
    expect(isAlive(old)).toBe(false);
    expect(await pypiProxyHealthy(proxy!.url)).toBe(false);
    proxy = undefined;

    await timed('restart (offline)', () => start(true));
    const r = await timed('install from cache', () => uvInstall('six==1.16.0', join(scratch, 'target-2')));
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(scratch, 'target-2', 'six.py'))).toBe(true);
    // What the cache does not hold, an offline proxy cannot serve: the install above came from the cache.
    const miss = await uvInstall('tabulate==0.9.0', join(scratch, 'target-3'), { retries: 0 });
    expect(miss.code).not.toBe(0);
    expect(miss.out).toMatch(/502 Bad Gateway/);
  }, 120_000);
});
