// A bundle's requirements.txt, installed by uv into an environment keyed by sha256(Python version, platform,
// index, wheels, requirements) in a cache directory (a pod's emptyDir, or a volume a namespace's pods share).
// The cache itself (locking, verifying, building, publishing, collecting) is sdk/python/modelship/_envcache.py,
// run isolated: an OS lock (flock) that dies with its holder, environments published under a new name and never
// replaced, each verified against the content hash recorded when it was built. Here: what may be installed (the
// index is the administrator's, not the bundle's), the key, and the helper's reports as log lines.
//
// In a pod the prepare init container does this, where the cache is writable, and records the environment's path
// (runtime/bundle/index.ts); the serving container mounts the cache read-only and takes that path.
// `modelship serve` does both in one process.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { msError } from '../../errors.ts';

export const REQUIREMENTS_FILE = 'requirements.txt';
export const WHEELS_DIR = 'wheels';
const TAIL_LINES = 12;
const HELPER = fileURLToPath(new URL('../../../sdk/python/modelship/_envcache.py', import.meta.url));

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
  /** HOME and uv's cache for the install: off the shared cache volume (e.g. the pod's own work directory). */
  scratchDir: string;
  /** requirements.txt may name indexes, find-links and URL requirements (the administrator allowed it). */
  allowIndexOptions: boolean;
  /** Wheels only (uv --no-build): with a cache shared by pods, no package's build script runs. */
  noBuild?: boolean;
  /** Collect environments no pod has started from for this many days. */
  maxIdleDays?: number;
}

export interface RequirementsEnv {
  /** The environment directory, for PYTHONPATH. */
  path: string;
  /** Its use file: workers hold a shared lock on it, so the collector leaves it alone. */
  inuse: string;
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

/** Options a requirements.txt line may hold: nested files of the bundle, hashes, and what binaries to prefer. */
const ALLOWED_OPTIONS = new Set([
  '-r',
  '--requirement',
  '-c',
  '--constraint',
  '--hash',
  '--only-binary',
  '--no-binary',
  '--prefer-binary',
  '--pre',
]);
const NESTED = new Set(['-r', '--requirement', '-c', '--constraint']);
/** A nested file: a plain relative path (no quotes, no variables, no scheme). */
const PLAIN_PATH = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;
/** A requirement: a name (extras, versions, markers and `--hash` options may follow), never a URL or a path. */
const REQUIREMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~;(]|$)/;

/** `-x value`, `-xvalue`, `--opt value` and `--opt=value`, any whitespace between → [option, value]. Pure. */
function splitOption(text: string): [string, string] {
  const m = /^(--[A-Za-z-]+)(?:=|\s+|$)(.*)$/s.exec(text) ?? /^(-[A-Za-z])\s*(.*)$/s.exec(text);
  return m ? [m[1] as string, (m[2] ?? '').trim()] : [text, ''];
}

/**
 * Why a (logical) requirements.txt line may not be installed here, or undefined. The package index is the
 * administrator's, so this is an allowlist: a requirement by name (versions, extras, markers, hashes), or one of a
 * few options (a nested file of the bundle, a hash, binary preferences). Anything else (an index or find-links
 * option in any spelling, a URL, VCS, editable or path requirement, a quoted or variable path) is refused. Pure.
 */
export function refusedRequirement(line: string): string | undefined {
  const text = line.replace(/(^|\s)#.*$/s, '').trim();
  if (!text) return undefined;
  // Quotes only in an environment marker (after `;`); variables and escapes nowhere: uv expands and unquotes them.
  const beforeMarker = text.startsWith('-') ? text : (text.split(';')[0] as string);
  if (/["'`\\]/.test(beforeMarker) || text.includes('$')) return 'quotes, variables and escapes are not taken here';
  if (text.startsWith('-')) {
    const [option, value] = splitOption(text);
    if (!ALLOWED_OPTIONS.has(option)) {
      return /index|find-links|trusted-host|^-[ifeE]$|editable/.test(option)
        ? `${option} names a package index or location; the index is the cluster's`
        : `${option} is not an option taken here (only -r/-c of a bundle file, --hash, --only-binary, --no-binary, --prefer-binary, --pre)`;
    }
    if (NESTED.has(option) && (!PLAIN_PATH.test(value) || value.split('/').includes('..'))) {
      return `${option} ${value} is not a plain path inside the bundle`;
    }
    return undefined;
  }
  if (/^[A-Za-z0-9._-]+(\[[^\]]*\])?\s*@/.test(text)) return 'a direct reference (name @ URL)';
  if (/:\/\//.test(text) || /^(git|hg|svn|bzr)\+/i.test(text)) return 'a URL requirement';
  if (!REQUIREMENT.test(text)) return 'a path requirement, or not a requirement by name';
  // After a requirement, only --hash options (what pip and uv take there).
  const options = text.match(/(^|\s)-{1,2}[A-Za-z-]+/g)?.map((o) => o.trim()) ?? [];
  if (options.some((o) => o !== '--hash')) return `${options.find((o) => o !== '--hash')} after a requirement`;
  return undefined;
}

/**
 * The logical lines of a requirements file as uv reads them: a comment ends at its line (a backslash there
 * continues nothing); a trailing backslash elsewhere joins the next line. Each with its first line's number. Pure.
 */
export function logicalLines(text: string): { line: string; number: number }[] {
  const out: { line: string; number: number }[] = [];
  let current: { line: string; number: number } | undefined;
  for (const [i, physical] of text.split(/\r?\n/).entries()) {
    const code = physical.replace(/(^|\s)#.*$/, '');
    const continued = /\\\s*$/.test(code) && !/^\s*#/.test(physical);
    const part = continued ? code.replace(/\\\s*$/, '') : code;
    if (current) current.line += ` ${part}`;
    else current = { line: part, number: i + 1 };
    if (!continued) {
      out.push(current);
      current = undefined;
    }
  }
  if (current) out.push(current);
  return out;
}

/** Every refused line of requirements.txt and the files it nests, with its file and line number. */
export async function checkRequirements(bundleDir: string, file = REQUIREMENTS_FILE, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = await readFile(join(bundleDir, file), 'utf8');
  const out: string[] = [];
  for (const { line, number } of logicalLines(text)) {
    const why = refusedRequirement(line);
    if (why) {
      out.push(`${file} line ${number} (${line.trim()}): ${why}`);
      continue;
    }
    const trimmed = line.trim();
    const [option, value] = trimmed.startsWith('-') ? splitOption(trimmed) : ['', ''];
    if (NESTED.has(option) && value) {
      const nested = relative(bundleDir, join(bundleDir, file, '..', value));
      if (nested.startsWith('..') || isAbsolute(nested)) out.push(`${file} line ${number}: ${value} is outside the bundle`);
      else if (!existsSync(join(bundleDir, nested))) out.push(`${file} line ${number}: ${value} is not in the bundle`);
      else out.push(...(await checkRequirements(bundleDir, nested, seen)));
    }
  }
  return out;
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

interface HelperLine {
  event?: string;
  result?: { env: string; inuse: string };
  error?: { code: string; detail: string };
  [k: string]: unknown;
}

/** Runs the cache helper; its events become log lines. Killed (its lock with it) past the timeout. */
function runHelper(o: DepsOptions, request: Record<string, unknown>): Promise<RequirementsEnv> {
  return new Promise((resolve, reject) => {
    // Only what the install needs: the path, and where the machine keeps its CA certificates (a mirror with an
    // internal CA).
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    for (const name of ['SSL_CERT_FILE', 'SSL_CERT_DIR']) if (process.env[name]) env[name] = process.env[name];
    const child = spawn(o.python, ['-I', HELPER], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let result: RequirementsEnv | undefined;
    let failure: string | undefined;
    let stderr = '';
    let buffered = '';
    const onLine = (text: string) => {
      let line: HelperLine;
      try {
        line = JSON.parse(text) as HelperLine;
      } catch {
        stderr += `${text}\n`;
        return;
      }
      if (line.result) result = { path: line.result.env, inuse: line.result.inuse };
      else if (line.error) failure = line.error.detail;
      else if (line.event) report(o.log, line as HelperLine & { event: string });
    };
    child.stdout.on('data', (b: Buffer) => {
      buffered += b.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-16 * 1024);
    });
    // The helper bounds the install and the wait for the lock itself; this is for a helper that hangs.
    const timer = setTimeout(() => child.kill('SIGKILL'), 2 * o.timeoutMs + 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(msError('MS_ERR_PYTHON_DEPS_FAILED', { detail: `cannot run ${o.python}: ${err.message}` }));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (result && code === 0) resolve(result);
      else reject(msError('MS_ERR_PYTHON_DEPS_FAILED', { detail: failure ?? (tail(stderr) || `the cache helper exited with ${code}`) }));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/** The helper's events as log lines (a tampered environment is a warning with its code). */
const EVENTS: Record<string, string> = {
  found: 'environment found in the cache',
  installing: 'installing with uv',
  installed: 'installed',
  waiting: 'another pod is installing this environment; waiting for it',
  collected: 'collected from the cache',
  tampered: 'an environment in the cache does not match what was built; refused, building another',
};

function report(log: Logger, line: { event: string; [k: string]: unknown }): void {
  const { event, ...fields } = line;
  const msg = `requirements.txt: ${EVENTS[event] ?? event}`;
  if (event === 'tampered') log.warn({ ...fields, code: 'MS_ERR_PYTHON_ENV_TAMPERED' }, msg);
  else if (event in EVENTS) log.info(fields, msg);
  else log.warn(fields, msg);
}

/** The environment for the bundle's requirements.txt (built if missing and allowed), or undefined without one. */
export async function requirementsEnv(o: DepsOptions): Promise<RequirementsEnv | undefined> {
  const reqFile = join(o.bundleDir, REQUIREMENTS_FILE);
  if (!existsSync(reqFile)) return undefined;
  if (!o.allowIndexOptions) {
    const refused = await checkRequirements(o.bundleDir);
    if (refused.length) {
      throw msError('MS_ERR_PYTHON_DEPS_FAILED', {
        detail: `${refused.join('; ')} (packages come from the cluster's index; an administrator can allow these lines: helm python.allowIndexOptions)`,
      });
    }
  }
  const requirements = await readFile(reqFile, 'utf8');
  const wheelsDir = join(o.bundleDir, WHEELS_DIR);
  const wheels = await wheelList(wheelsDir);
  const key = envKey({ pythonIdentity: o.pythonIdentity, indexUrl: wheels.length ? undefined : o.indexUrl, wheels, requirements });
  const home = join(o.scratchDir, 'home');
  const uvCache = join(o.scratchDir, 'uv-cache');
  await Promise.all([mkdir(home, { recursive: true }), mkdir(uvCache, { recursive: true })]);
  return runHelper(o, {
    envDir: o.envDir,
    key,
    requirements: reqFile,
    wheelsDir: wheels.length ? wheelsDir : null,
    uv: o.uv,
    python: o.python,
    indexUrl: wheels.length ? null : (o.indexUrl ?? null),
    // The index's host only: an index URL may carry credentials.
    indexHost: wheels.length ? 'wheels/' : o.indexUrl ? new URL(o.indexUrl).host : 'uv default (PyPI)',
    home,
    uvCache,
    timeoutS: Math.ceil(o.timeoutMs / 1000),
    noBuild: o.noBuild ?? false,
    maxIdleDays: o.maxIdleDays ?? 30,
  });
}
