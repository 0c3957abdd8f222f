// Builds every component of the local environment from package registries (the Go module proxy, Maven
// Central and PyPI), once, into the cache. Each component lands in its own versioned directory, written to a
// temporary directory first and renamed into place, so an interrupted build never looks complete.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot, componentDir } from './cache.ts';
import { buildPypiProxy, PYPI_PROXY_LOCK } from './pypi-proxy.ts';
import {
  CONTAINERD_VERSION,
  COREDNS_VERSION,
  ETCD_VERSION,
  HELM_VERSION,
  KAFKA_VERSION,
  KUBERNETES_VERSION,
  KWOK_VERSION,
  METRICS_SERVER_VERSION,
  MIN_PYTHON_VERSION,
  MINIO_VERSION,
  RELOAD4J_VERSION,
  SCALA_VERSION,
  SLF4J_VERSION,
  TEST_WHEELS,
  UV_VERSION,
  VEGETA_VERSION,
} from './versions.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const GO_MODULE_DIR = join(HERE, 'go');
const MINIO_ADMIN_DIR = join(HERE, 'minio-admin');
const VEGETA_DIR = join(HERE, 'vegeta');
const VEGETA_MODULE = 'github.com/tsenart/vegeta/v12';
/** What the environment's Python holds: the runtime image's base stack, and the test tools (pytest, mypy, ruff, …). */
const PYTHON_LOCKS = [join(HERE, '..', 'runtime', 'engines', 'python', 'base-stack.lock'), join(HERE, 'python-test.lock')];
/** Imported once the Python is in place: a venv that did not survive the rename into place fails here. */
const PYTHON_IMPORTS = [
  'numpy',
  'scipy',
  'sklearn',
  'pandas',
  'joblib',
  'xgboost',
  'lightgbm',
  'pytest',
  'mypy',
  'requests',
  'tritonclient.http',
  'tritonclient.grpc',
];

export type ComponentName =
  | 'kubernetes'
  | 'kwok'
  | 'minio'
  | 'minio-admin'
  | 'vegeta'
  | 'helm'
  | 'kafka'
  | 'python'
  | 'pypi-proxy'
  | 'node'
  | 'addons';

/** Paths of the built binaries (and Kafka's class path), as the launcher needs them. */
export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  minio: string;
  /** env/minio-admin: makes the read-only MinIO user for pods. */
  minioAdmin: string;
  /** vegeta (env/vegeta): the benchmarks' open-loop load generator. */
  vegeta: string;
  helm: string;
  kafkaLibDir: string;
  /** The interpreter of a virtual environment with the base data-science stack and pytest. */
  python: string;
  /** Wheels of TEST_WHEELS, for offline installs of requirements.txt in tests. */
  wheels: string;
  /** The uv binary (installs a Python bundle's requirements). */
  uv: string;
  /** The venv of devpi-server, the package index proxy that the cluster's pods install requirements through. */
  pypiProxyVenv: string;
  /** The real node: kubelet, kube-proxy, containerd (+ its runc shim and ctr) and the pause binary. */
  kubelet: string;
  kubeProxy: string;
  containerd: string;
  ctr: string;
  /** Directory of containerd-shim-runc-v2 (on the containerd's PATH). */
  nodeBinDir: string;
  /** Statically linked pause, the pods' sandbox process (its image is built from it). */
  pause: string;
  /** Cluster add-ons run as pods on the real node, from their Go modules. */
  coredns: string;
  metricsServer: string;
}

interface Component {
  name: ComponentName;
  version: string;
  /** Rough first-build time on a 2-core machine, shown so a long silence is not mistaken for a hang. */
  expect: string;
  tools: Toolchain[];
  build(outDir: string, log: NodeJS.WritableStream): Promise<void>;
  /** Run on the component at its final path, before it is marked complete. */
  check?(dir: string, log: NodeJS.WritableStream): Promise<void>;
}

type Toolchain = 'go' | 'java' | 'mvn' | 'python3' | 'gcc';

const INSTALL_HINT: Record<Toolchain, string> = {
  go: 'Go ≥ 1.25 (https://go.dev/doc/install, or the Debian package golang-go from bookworm-backports)',
  java: 'a Java runtime ≥ 17 (Debian package openjdk-17-jre-headless)',
  mvn: 'Apache Maven (Debian package maven)',
  python3: `Python ≥ ${MIN_PYTHON_VERSION} with pip (Debian packages python3 and python3-pip, or pyenv)`,
  gcc: 'a C compiler with a static libc (Debian packages gcc and libc6-dev)',
};

export class ToolchainMissingError extends Error {
  /** `found`: what is on PATH instead, when the tool is there but too old. */
  constructor(tool: Toolchain, component: string, found?: string) {
    const problem = found ? `but the ${tool} on PATH is ${found}` : 'which is not on PATH';
    super(`building ${component} needs ${tool}, ${problem}: install ${INSTALL_HINT[tool]}`);
    this.name = 'ToolchainMissingError';
  }
}

export class BuildError extends Error {
  constructor(component: string, command: string, logFile: string, tail: string) {
    super(`building ${component} failed: ${command}\nlog: ${logFile}\n--- last lines ---\n${tail}`);
    this.name = 'BuildError';
  }
}

function goEnv(): NodeJS.ProcessEnv {
  // The committed go.sum pins every module hash; the checksum database is not consulted for modules it lists.
  return { ...process.env, GOFLAGS: '-buildvcs=false -mod=readonly', CGO_ENABLED: '0' };
}

const kubeLdflags = (() => {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  const vars: Record<string, string> = {
    gitVersion: KUBERNETES_VERSION,
    gitMajor: major ?? '1',
    gitMinor: minor ?? '0',
    gitTreeState: 'clean',
    buildDate: '1970-01-01T00:00:00Z',
  };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [key, value] of Object.entries(vars)) flags.push(`-X ${pkg}.${key}=${value}`);
  }
  return flags.join(' ');
})();

interface HostPython {
  /** The real interpreter (not a pyenv shim, which depends on the working directory). */
  executable: string;
  version: string;
}

const hostPythons = new Map<string, HostPython | undefined>();

/** The python3 on PATH, asked once per PATH. */
function hostPython(): HostPython | undefined {
  const path = process.env.PATH ?? '';
  if (!hostPythons.has(path)) {
    const probe = spawnSync('python3', ['-c', "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"], {
      encoding: 'utf8',
    });
    const [executable, version] = probe.status === 0 ? probe.stdout.trim().split('\n') : [];
    hostPythons.set(path, executable && version ? { executable, version } : undefined);
  }
  return hostPythons.get(path);
}

/** `a` ≥ `b`, comparing dotted numeric versions part by part. */
export function versionAtLeast(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/**
 * The cache key of the environment's Python: uv's version, the interpreter's, and a short hash of both and
 * of the locks' contents, so a changed pin (or a new python3) builds a new one.
 */
export function pythonVersionKey(uvVersion: string, pythonVersion: string, locks: string[]): string {
  const hash = createHash('sha256').update(`uv ${uvVersion}\npython ${pythonVersion}\n`);
  for (const lock of locks) hash.update(lock).update('\0');
  return `uv${uvVersion}-py${pythonVersion}-${hash.digest('hex').slice(0, 12)}`;
}

let pythonLocks: string[] | undefined;

function uvEnv(): NodeJS.ProcessEnv {
  // uv may not fetch interpreters here: it uses the python3 it is given, or fails.
  return { ...process.env, UV_CACHE_DIR: join(cacheRoot(), 'uv'), UV_PYTHON_DOWNLOADS: 'never' };
}

const components: Component[] = [
  {
    name: 'kubernetes',
    version: `${KUBERNETES_VERSION}-etcd${ETCD_VERSION}`,
    expect: '15–25 min',
    tools: ['go'],
    async build(out, log) {
      const cmds = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];
      await run(
        'go',
        ['build', '-ldflags', kubeLdflags, '-o', `${out}/`, ...cmds.map((c) => `k8s.io/kubernetes/cmd/${c}`)],
        { cwd: GO_MODULE_DIR, env: goEnv() },
        log,
      );
      await run(
        'go',
        ['build', '-ldflags', '-s -w', '-o', join(out, 'etcd'), 'go.etcd.io/etcd/server/v3'],
        { cwd: GO_MODULE_DIR, env: goEnv() },
        log,
      );
    },
  },
  {
    name: 'kwok',
    version: KWOK_VERSION,
    expect: '2–4 min',
    tools: ['go'],
    build: (out, log) => goInstall(`sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}`, out, log),
  },
  {
    name: 'helm',
    version: HELM_VERSION,
    expect: '3–5 min',
    tools: ['go'],
    build: (out, log) =>
      goInstall(`helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`, out, log, [`-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`]),
  },
  {
    name: 'minio',
    version: MINIO_VERSION,
    expect: '5–8 min',
    tools: ['go'],
    build: (out, log) => goInstall(`github.com/minio/minio@${MINIO_VERSION}`, out, log),
  },
  {
    name: 'minio-admin',
    // Its sources are the version: a change to them builds it again.
    get version() {
      const h = createHash('sha256');
      for (const f of ['go.mod', 'go.sum', 'main.go']) h.update(readFileSync(join(MINIO_ADMIN_DIR, f)));
      return h.digest('hex').slice(0, 12);
    },
    expect: '10–60 s',
    tools: ['go'],
    build: (out, log) =>
      run(
        'go',
        ['build', '-ldflags', '-s -w', '-o', join(out, 'minio-admin'), '.'],
        { cwd: MINIO_ADMIN_DIR, env: { ...process.env, GOFLAGS: '-buildvcs=false -mod=readonly', CGO_ENABLED: '0' } },
        log,
      ),
  },
  {
    name: 'vegeta',
    // The pinned release, and its go.mod and go.sum: a changed pin of a dependency builds it again.
    get version() {
      const h = createHash('sha256');
      for (const f of ['go.mod', 'go.sum']) h.update(readFileSync(join(VEGETA_DIR, f)));
      return `${VEGETA_VERSION}-${h.digest('hex').slice(0, 12)}`;
    },
    expect: '10–60 s',
    tools: ['go'],
    async build(out, log) {
      // go.mod is what the build uses; versions.ts is what people read: they must agree.
      const required = new RegExp(`^\\s*(?:require\\s+)?${VEGETA_MODULE.replaceAll('.', '\\.')}\\s+(\\S+)`, 'm').exec(
        readFileSync(join(VEGETA_DIR, 'go.mod'), 'utf8'),
      )?.[1];
      if (required !== VEGETA_VERSION) {
        throw new Error(
          `env/vegeta/go.mod requires ${VEGETA_MODULE} ${required ?? '(nothing)'}, env/versions.ts pins ${VEGETA_VERSION}: ` +
            `run \`go get ${VEGETA_MODULE}@${VEGETA_VERSION} && go mod tidy\` in env/vegeta`,
        );
      }
      await run(
        'go',
        ['build', '-ldflags', `-s -w -X main.Version=${VEGETA_VERSION}`, '-o', join(out, 'vegeta'), VEGETA_MODULE],
        { cwd: VEGETA_DIR, env: goEnv() },
        log,
      );
    },
    async check(dir, log) {
      await run(join(dir, 'vegeta'), ['-version'], { cwd: dir, env: process.env }, log);
    },
  },
  {
    name: 'kafka',
    version: `${SCALA_VERSION}-${KAFKA_VERSION}`,
    expect: '1–2 min',
    tools: ['java', 'mvn'],
    async build(out, log) {
      await writeFile(join(out, 'pom.xml'), kafkaPom());
      await run(
        'mvn',
        [
          '-B',
          '-q',
          '-f',
          join(out, 'pom.xml'),
          'dependency:copy-dependencies',
          `-DoutputDirectory=${join(out, 'libs')}`,
          '-DincludeScope=runtime',
        ],
        { cwd: out, env: process.env },
        log,
      );
      const jars = await readdir(join(out, 'libs'));
      if (!jars.some((j) => j.startsWith(`kafka_${SCALA_VERSION}-${KAFKA_VERSION}`))) {
        throw new Error(`Maven did not produce kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar in ${out}/libs`);
      }
    },
  },
  {
    // The real node's own programs. kubelet and kube-proxy come from the same wrapper module as the control
    // plane (one go.sum); containerd from its module; pause from the C source Kubernetes ships in that module.
    name: 'node',
    version: `${KUBERNETES_VERSION}-containerd${CONTAINERD_VERSION}`,
    expect: '3–6 min',
    tools: ['go', 'gcc'],
    async build(out, log) {
      await run(
        'go',
        ['build', '-ldflags', kubeLdflags, '-o', `${out}/`, 'k8s.io/kubernetes/cmd/kubelet', 'k8s.io/kubernetes/cmd/kube-proxy'],
        { cwd: GO_MODULE_DIR, env: goEnv() },
        log,
      );
      for (const cmd of ['containerd', 'containerd-shim-runc-v2', 'ctr']) {
        await goInstall(`github.com/containerd/containerd/v2/cmd/${cmd}@${CONTAINERD_VERSION}`, out, log);
      }
      const modDir = spawnSync('go', ['list', '-m', '-f', '{{.Dir}}', 'k8s.io/kubernetes'], {
        cwd: GO_MODULE_DIR,
        env: goEnv(),
        encoding: 'utf8',
      });
      const source = join(modDir.stdout.trim(), 'build', 'pause', 'linux', 'pause.c');
      await run(
        'gcc',
        ['-Os', '-static', '-o', join(out, 'pause'), `-DVERSION=${KUBERNETES_VERSION}`, source],
        { cwd: out, env: process.env },
        log,
      );
    },
  },
  {
    name: 'addons',
    version: `coredns${COREDNS_VERSION}-metrics-server${METRICS_SERVER_VERSION}`,
    expect: '3–6 min',
    tools: ['go'],
    async build(out, log) {
      await goInstall(`github.com/coredns/coredns@${COREDNS_VERSION}`, out, log);
      await goInstall(`sigs.k8s.io/metrics-server/cmd/metrics-server@${METRICS_SERVER_VERSION}`, out, log);
    },
  },
  {
    name: 'python',
    get version() {
      pythonLocks ??= PYTHON_LOCKS.map((f) => readFileSync(f, 'utf8'));
      return pythonVersionKey(UV_VERSION, hostPython()?.version ?? 'none', [...pythonLocks, TEST_WHEELS.join('\n')]);
    },
    expect: '15–60 s',
    tools: ['python3'],
    async build(out, log) {
      const python = (hostPython() as HostPython).executable;
      await run(
        python,
        ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '--target', join(out, 'uv'), `uv==${UV_VERSION}`],
        { cwd: out, env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
        log,
      );
      const uv = join(out, 'uv', 'bin', 'uv');
      // Relocatable: the entry points (bin/pytest) find their interpreter relative to themselves, so the
      // venv still works after the rename from the staging directory; bin/python links to `python`.
      await run(uv, ['venv', '--quiet', '--relocatable', '--python', python, join(out, 'venv')], { cwd: out, env: uvEnv() }, log);
      const locks = PYTHON_LOCKS.flatMap((f) => ['-r', f]);
      await run(
        uv,
        ['pip', 'install', '--quiet', '--python', join(out, 'venv', 'bin', 'python'), ...locks],
        { cwd: out, env: uvEnv() },
        log,
      );
      await run(
        python,
        [
          '-m',
          'pip',
          'download',
          '--quiet',
          '--disable-pip-version-check',
          '--no-deps',
          '--only-binary=:all:',
          '-d',
          join(out, 'wheels'),
          ...TEST_WHEELS,
        ],
        { cwd: out, env: process.env },
        log,
      );
    },
    async check(dir, log) {
      const script = `import ${PYTHON_IMPORTS.join(', ')}, sys; print(sys.prefix)`;
      await run(join(dir, 'venv', 'bin', 'python'), ['-c', script], { cwd: dir, env: process.env }, log);
      await run(join(dir, 'venv', 'bin', 'pytest'), ['--version'], { cwd: dir, env: process.env }, log);
      await run(join(dir, 'venv', 'bin', 'ruff'), ['--version'], { cwd: dir, env: process.env }, log);
    },
  },
  {
    // After 'python', whose uv it uses.
    name: 'pypi-proxy',
    get version() {
      return pythonVersionKey(UV_VERSION, hostPython()?.version ?? 'none', [readFileSync(PYPI_PROXY_LOCK, 'utf8')]);
    },
    expect: '10–30 s',
    tools: ['python3'],
    async build(out, log) {
      await buildPypiProxy(out, { python: (hostPython() as HostPython).executable, uv: binaries().uv }, log);
    },
  },
];

function kafkaPom(): string {
  const dep = (g: string, a: string, v: string) =>
    `    <dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by modelship's env/: Kafka ${KAFKA_VERSION} broker with its run-time logging backend. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.modelship.testenv</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
${dep('org.apache.kafka', `kafka_${SCALA_VERSION}`, KAFKA_VERSION)}
${dep('org.slf4j', 'slf4j-reload4j', SLF4J_VERSION)}
${dep('ch.qos.reload4j', 'reload4j', RELOAD4J_VERSION)}
  </dependencies>
</project>
`;
}

async function goInstall(pkg: string, out: string, log: NodeJS.WritableStream, extraLdflags: string[] = []) {
  // `go install pkg@version` builds with the module's own go.mod, outside any main module.
  const ldflags = ['-s', '-w', ...extraLdflags].join(' ');
  await run(
    'go',
    ['install', '-ldflags', ldflags, pkg],
    { cwd: out, env: { ...process.env, GOBIN: out, GOFLAGS: '-buildvcs=false', CGO_ENABLED: '0' } },
    log,
  );
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

/** Why `tool` cannot be used: undefined when it can; `found` names the version on PATH when it is too old. */
function toolProblem(tool: Toolchain): { found?: string } | undefined {
  if (tool === 'python3') {
    const python = hostPython();
    if (!python) return {};
    return versionAtLeast(python.version, MIN_PYTHON_VERSION) ? undefined : { found: `Python ${python.version}` };
  }
  if (tool === 'gcc') return spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : {};
  const probe = tool === 'java' ? ['-version'] : ['version'];
  const result = spawnSync(tool === 'mvn' ? 'mvn' : tool, tool === 'mvn' ? ['-v'] : probe, { stdio: 'ignore' });
  return result.status === 0 ? undefined : {};
}

export interface BuildOptions {
  /** Progress sink; one line per component state change. */
  progress?: (line: string) => void;
  only?: ComponentName[];
}

function isBuilt(c: Component): boolean {
  return existsSync(join(componentDir(c.name, c.version), '.complete'));
}

/** Builds whatever is missing from the cache and returns the paths of all binaries. */
export async function ensureBuilt(options: BuildOptions = {}): Promise<Binaries> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const wanted = components.filter((c) => !options.only || options.only.includes(c.name));
  const missing = wanted.filter((c) => !isBuilt(c));
  for (const c of missing) {
    for (const tool of c.tools) {
      const problem = toolProblem(tool);
      if (problem) throw new ToolchainMissingError(tool, c.name, problem.found);
    }
  }
  if (missing.length > 0) {
    progress(
      `modelship env: building ${missing.map((c) => c.name).join(', ')} into ${dirname(componentDir('x', 'y'))} ` +
        '(first time only; the whole first build takes 30–40 min on 2 cores)',
    );
  }
  for (const [i, c] of missing.entries()) {
    const final = componentDir(c.name, c.version);
    const staging = `${final}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    const logFile = `${final}.build.log`;
    const log = createWriteStream(logFile);
    const started = Date.now();
    progress(`[${i + 1}/${missing.length}] ${c.name} ${c.version}: building (usually ${c.expect}; log ${logFile})`);
    const ticker = setInterval(() => {
      progress(`[${i + 1}/${missing.length}] ${c.name}: still building, ${Math.round((Date.now() - started) / 1000)} s`);
    }, 60_000);
    try {
      await c.build(staging, log);
      await rm(final, { recursive: true, force: true });
      await rename(staging, final);
      await c.check?.(final, log);
    } catch (err) {
      const e = err as Error & { tail?: string; command?: string };
      throw new BuildError(c.name, e.command ?? e.message, logFile, e.tail ?? String(err));
    } finally {
      clearInterval(ticker);
      await new Promise((r) => log.end(r));
    }
    // Last: a directory without it (an interrupted build or check) is rebuilt from scratch.
    await writeFile(join(final, '.complete'), `${new Date().toISOString()}\n`);
    progress(`[${i + 1}/${missing.length}] ${c.name}: built in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  return binaries();
}

/** Paths of the binaries in the cache (whether built or not). */
export function binaries(): Binaries {
  const dir = (name: ComponentName) => {
    const c = components.find((x) => x.name === name);
    if (!c) throw new Error(`unknown component ${name}`);
    return componentDir(c.name, c.version);
  };
  const kube = dir('kubernetes');
  return {
    etcd: join(kube, 'etcd'),
    kubeApiserver: join(kube, 'kube-apiserver'),
    kubeControllerManager: join(kube, 'kube-controller-manager'),
    kubeScheduler: join(kube, 'kube-scheduler'),
    kubectl: join(kube, 'kubectl'),
    kwok: join(dir('kwok'), 'kwok'),
    minio: join(dir('minio'), 'minio'),
    minioAdmin: join(dir('minio-admin'), 'minio-admin'),
    vegeta: join(dir('vegeta'), 'vegeta'),
    helm: join(dir('helm'), 'helm'),
    kafkaLibDir: join(dir('kafka'), 'libs'),
    python: join(dir('python'), 'venv', 'bin', 'python'),
    uv: join(dir('python'), 'uv', 'bin', 'uv'),
    wheels: join(dir('python'), 'wheels'),
    pypiProxyVenv: join(dir('pypi-proxy'), 'venv'),
    kubelet: join(dir('node'), 'kubelet'),
    kubeProxy: join(dir('node'), 'kube-proxy'),
    containerd: join(dir('node'), 'containerd'),
    ctr: join(dir('node'), 'ctr'),
    nodeBinDir: dir('node'),
    pause: join(dir('node'), 'pause'),
    coredns: join(dir('addons'), 'coredns'),
    metricsServer: join(dir('addons'), 'metrics-server'),
  };
}

export function builtState(): Record<ComponentName, boolean> {
  return Object.fromEntries(components.map((c) => [c.name, isBuilt(c)])) as Record<ComponentName, boolean>;
}
