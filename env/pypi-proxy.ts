// A caching proxy of the Python package index, for pods of the local cluster, which reach no index of their
// own: a bundle's requirements.txt is installed with `uv pip install --index-url <url>` through it. It is
// devpi-server (from PyPI, pinned in env/pypi-proxy.lock, in a venv of its own): its root/pypi mirror index
// serves the PEP 503 simple API and keeps every page and file it served in a directory that outlives the
// environment, so a second environment (or an offline one) installs the same packages without the upstream.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from './cache.ts';
import { isAlive, type ProcessRecord, startProcess, stopProcess, waitReady } from './process.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** devpi-server and its dependencies, locked for Python 3.11 on manylinux (see the lock's header). */
export const PYPI_PROXY_LOCK = join(HERE, 'pypi-proxy.lock');

/** The mirror index devpi-init makes; its simple API is at `/<index>/+simple/`. */
const MIRROR_INDEX = 'root/pypi';
/** The path of the simple index on the server, whatever address it is reached at. */
export const PYPI_PROXY_INDEX_PATH = `/${MIRROR_INDEX}/+simple/`;
const DEFAULT_UPSTREAM = 'https://pypi.org/simple/';
const DEBIAN_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The server's own directory under the cache dir: devpi's SQLite database, its `+files/` and our secrets. */
const SERVER_SUBDIR = 'server';
/** The root password, made at init: only this module logs in (to point root/pypi at the upstream). */
const ROOT_PASSWORD_FILE = '.modelship-root-password';
/** devpi signs login tokens with a key derived from this; without one it makes a new one per start and warns. */
const SECRET_FILE = '.modelship-secret';
/** The process that serves the directory now: two servers on one SQLite database would corrupt it. */
const OWNER_FILE = '.modelship-owner.json';

/** Makes `out/venv` with devpi-server from the lock. The server directory is made at start (it is per cache dir). */
export async function buildPypiProxy(out: string, tools: { python: string; uv: string }, log: NodeJS.WritableStream): Promise<void> {
  const env = { ...process.env, UV_CACHE_DIR: join(cacheRoot(), 'uv'), UV_PYTHON_DOWNLOADS: 'never' };
  // Relocatable, as the environment's other venv: bin/devpi-server finds its interpreter relative to itself,
  // so the venv still works after the rename from a staging directory.
  await run(tools.uv, ['venv', '--quiet', '--relocatable', '--python', tools.python, join(out, 'venv')], { cwd: out, env }, log);
  await run(
    tools.uv,
    ['pip', 'install', '--quiet', '--python', join(out, 'venv', 'bin', 'python'), '-r', PYPI_PROXY_LOCK],
    { cwd: out, env },
    log,
  );
  await run(join(out, 'venv', 'bin', 'devpi-server'), ['--version'], { cwd: out, env: serverEnv() }, log);
}

/** Where the proxy keeps what it fetched, across environment runs: `<cacheRoot>/pypi-proxy`. */
export function pypiProxyCacheDir(): string {
  const dir = join(cacheRoot(), 'pypi-proxy');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The index pip on this machine installs from: PIP_INDEX_URL, else `index-url` of pip's config files (read in
 * pip's order, later ones winning, `[install]` over `[global]`), else PyPI's simple index.
 */
export function defaultUpstream(): string {
  return normalizeIndexUrl(process.env.PIP_INDEX_URL || pipConfig('index-url') || DEFAULT_UPSTREAM);
}

/**
 * The CA bundle pip trusts (PIP_CERT, pip's `cert`, then what requests would use from the environment), else
 * Debian's bundle when present: on a machine whose traffic passes a TLS-inspecting proxy, only that bundle
 * holds the proxy's CA, and the certifi bundle devpi would fall back to does not.
 */
export function caBundle(): string | undefined {
  const candidates = [
    process.env.PIP_CERT,
    pipConfig('cert'),
    process.env.REQUESTS_CA_BUNDLE,
    process.env.SSL_CERT_FILE,
    process.env.CURL_CA_BUNDLE,
    DEBIAN_CA_BUNDLE,
  ];
  return candidates.find((f): f is string => !!f && existsSync(f));
}

export interface PypiProxyStartOptions {
  /** The venv of buildPypiProxy (`<out>/venv`). */
  venv: string;
  port: number;
  /** The only address it listens on; 127.0.0.1 unless told. */
  host?: string;
  logFile: string;
  /** Kept across runs; pypiProxyCacheDir() unless told. */
  cacheDir?: string;
  /** The simple index it mirrors; defaultUpstream() unless told. */
  upstream?: string;
  /** Serve only what the cache holds and contact no upstream (devpi's --offline-mode). */
  offline?: boolean;
  timeoutMs?: number;
}

/**
 * Starts devpi-server on `host:port` over the cache dir (made the first time, kept as it is afterwards), waits
 * until it answers, points its mirror at the upstream, and returns the simple index URL
 * (`http://host:port/root/pypi/+simple/`).
 */
export async function startPypiProxy(o: PypiProxyStartOptions): Promise<{ process: ProcessRecord; url: string }> {
  const host = o.host ?? '127.0.0.1';
  const cacheDir = o.cacheDir ?? pypiProxyCacheDir();
  const upstream = normalizeIndexUrl(o.upstream ?? defaultUpstream());
  const timeoutMs = o.timeoutMs ?? 60_000;
  const serverDir = join(cacheDir, SERVER_SUBDIR);
  await mkdir(dirname(o.logFile), { recursive: true });
  await mkdir(cacheDir, { recursive: true });

  const owner = await readOwner(serverDir);
  if (owner && isAlive(owner)) {
    throw new Error(`another PyPI proxy (pid ${owner.pid}) serves ${serverDir}: stop it, or give this one another cache dir`);
  }
  const config = join(cacheDir, 'devpi-server.yml');
  // Its own (empty) config file, so a devpi-server.yml in the user's or the site's config dir does not apply.
  await writeFile(config, '# Written by modelship env/pypi-proxy.ts: every option is on the command line.\n');
  await initServerDir(o.venv, serverDir, config, o.logFile);

  const args = [
    '--configfile',
    config,
    '--serverdir',
    serverDir,
    '--secretfile',
    join(serverDir, SECRET_FILE),
    '--host',
    host,
    '--port',
    String(o.port),
    // Only root may make users and indexes: the pods may install, not upload.
    '--restrict-modify',
    'root',
    // The first fetch of a big project's page (numpy's is megabytes) takes longer than the default 5 s, and a
    // timeout with nothing cached fails the install.
    '--request-timeout',
    '30',
    // devpi derives its token-signing key from the secret file with argon2 tuned for passwords (512 MiB,
    // 16 passes: ~20 s at every start on two cores). The secret is 32 random bytes, which needs no stretching.
    '--argon2-memory-cost',
    '8192',
    '--argon2-time-cost',
    '1',
    '--argon2-parallelism',
    '1',
    ...(o.offline ? ['--offline-mode'] : []),
  ];
  const rec = startProcess({
    name: 'pypi-proxy',
    command: join(o.venv, 'bin', 'devpi-server'),
    args,
    logFile: o.logFile,
    env: serverEnv(),
    cwd: serverDir,
    dataDir: cacheDir,
  });
  try {
    await writeFile(join(serverDir, OWNER_FILE), JSON.stringify({ pid: rec.pid, startTime: rec.startTime }));
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${o.port}`;
    // /+api answers from the server alone (the simple index of a mirror not yet configured would fetch
    // PyPI's list of all projects).
    await waitReady(rec, async () => (await fetch(`${base}/+api`, { signal: AbortSignal.timeout(2000) })).ok, timeoutMs);
    await configureMirror(base, serverDir, upstream);
    const url = `${base}${PYPI_PROXY_INDEX_PATH}`;
    await waitReady(rec, () => pypiProxyHealthy(url), 10_000, 'serving its simple index');
    return { process: rec, url };
  } catch (err) {
    await stopProcess(rec, 5000);
    throw err;
  }
}

/** True when the index answers its (local) simple page: the list of projects it holds, without the upstream. */
export async function pypiProxyHealthy(indexUrl: string): Promise<boolean> {
  try {
    const res = await fetch(indexUrl, { headers: { accept: 'text/html' }, signal: AbortSignal.timeout(5000) });
    return res.ok && /<html/i.test(await res.text());
  } catch {
    return false;
  }
}

/**
 * Makes the server directory once (devpi-init: its database, the root user and the root/pypi mirror), in a
 * staging directory renamed into place, so an interrupted init never looks done. An existing one is kept.
 */
async function initServerDir(venv: string, serverDir: string, config: string, logFile: string): Promise<void> {
  if (existsSync(join(serverDir, '.serverversion')) && existsSync(join(serverDir, ROOT_PASSWORD_FILE))) return;
  if (existsSync(serverDir)) {
    throw new Error(`${serverDir} is not a complete devpi server directory: remove it to make a new (empty) one`);
  }
  const staging = `${serverDir}.init-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  // devpi refuses a secret file in a directory that others may write to.
  await mkdir(staging, { recursive: true, mode: 0o700 });
  await chmod(staging, 0o700);
  const password = randomBytes(24).toString('base64url');
  const log = createWriteStream(logFile, { flags: 'a' });
  try {
    // The password goes by the environment, not argv, which every user of the machine can read.
    await run(
      join(venv, 'bin', 'devpi-init'),
      ['--configfile', config, '--serverdir', staging],
      { cwd: staging, env: { ...serverEnv(), DEVPISERVER_ROOT_PASSWD: password } },
      log,
    );
  } finally {
    await new Promise((r) => log.end(r));
  }
  // devpi-init wants an empty directory: our files come after it.
  await writeFile(join(staging, SECRET_FILE), randomBytes(32).toString('base64url'), { mode: 0o600 });
  await writeFile(join(staging, ROOT_PASSWORD_FILE), password, { mode: 0o600 });
  await rename(staging, serverDir);
}

/**
 * Points root/pypi at the upstream and tells it the upstream's full project list is not to be fetched: devpi
 * otherwise downloads PyPI's list of all ~700,000 names (30–45 s) before it serves the first project.
 * Written only when it differs, so the usual start makes no change.
 */
async function configureMirror(base: string, serverDir: string, upstream: string): Promise<void> {
  const res = await fetch(`${base}/${MIRROR_INDEX}/?no_projects=`, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${MIRROR_INDEX} config: ${res.status} ${await res.text()}`);
  const ix = ((await res.json()) as { result: Record<string, unknown> }).result;
  const want: Record<string, unknown> = { mirror_url: upstream, mirror_no_project_list: true };
  const changes = Object.entries(want)
    .filter(([k, v]) => ix[k] !== v)
    .map(([k, v]) => `${k}=${v === true ? 'True' : String(v)}`);
  if (changes.length === 0) return;
  const password = (await readFile(join(serverDir, ROOT_PASSWORD_FILE), 'utf8')).trim();
  const patch = await fetch(`${base}/${MIRROR_INDEX}`, {
    method: 'PATCH',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Basic ${Buffer.from(`root:${password}`).toString('base64')}`,
    },
    body: JSON.stringify(changes),
    signal: AbortSignal.timeout(30_000),
  });
  if (!patch.ok) throw new Error(`PATCH ${MIRROR_INDEX} ${JSON.stringify(changes)}: ${patch.status} ${await patch.text()}`);
}

/**
 * The server's environment: the CA bundle pip trusts (devpi's HTTP client reads REQUESTS_CA_BUNDLE, httpx
 * SSL_CERT_FILE), and none of devpi's own variables, which would override the command line.
 */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('DEVPISERVER_') && !k.startsWith('DEVPI_')) env[k] = v;
  }
  const ca = caBundle();
  if (ca) {
    env.REQUESTS_CA_BUNDLE = ca;
    env.SSL_CERT_FILE = ca;
  }
  // pyramid imports pkg_resources, whose deprecation warning would open every log.
  env.PYTHONWARNINGS = 'ignore:pkg_resources is deprecated as an API:UserWarning';
  return env;
}

async function readOwner(serverDir: string): Promise<Pick<ProcessRecord, 'pid' | 'startTime'> | undefined> {
  try {
    return JSON.parse(await readFile(join(serverDir, OWNER_FILE), 'utf8')) as Pick<ProcessRecord, 'pid' | 'startTime'>;
  } catch {
    return undefined;
  }
}

function normalizeIndexUrl(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** A key of pip's config files as pip would see it for `pip install`, or undefined. */
function pipConfig(key: string): string | undefined {
  const env = process.env;
  const xdgDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter(Boolean);
  const files =
    env.PIP_CONFIG_FILE === 'os.devnull' || env.PIP_CONFIG_FILE === '/dev/null'
      ? []
      : [
          ...xdgDirs.map((d) => join(d, 'pip', 'pip.conf')),
          '/etc/pip.conf',
          join(homedir(), '.pip', 'pip.conf'),
          join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'pip', 'pip.conf'),
          ...(env.VIRTUAL_ENV ? [join(env.VIRTUAL_ENV, 'pip.conf')] : []),
          ...(env.PIP_CONFIG_FILE ? [env.PIP_CONFIG_FILE] : []),
        ];
  let value: string | undefined;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const sections = parseIni(text);
    value = sections.install?.[key] ?? sections.global?.[key] ?? value;
  }
  return value;
}

function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = out[header[1]!.trim()] ??= {};
      continue;
    }
    const kv = /^([^=:]+)[=:](.*)$/.exec(line);
    if (kv && section) section[kv[1]!.trim().replaceAll('_', '-')] = kv[2]!.trim();
  }
  return out;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }, log: NodeJS.WritableStream): Promise<void> {
  log.write(`$ ${cmd} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const collect = (chunk: Buffer) => {
      log.write(chunk);
      tail.push(...chunk.toString().split('\n'));
      if (tail.length > 40) tail.splice(0, tail.length - 40);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(Object.assign(new Error(`${cmd} exited with ${code}`), { tail: tail.join('\n'), command: `${cmd} ${args.join(' ')}` }));
    });
  });
}
