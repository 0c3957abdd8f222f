// `npm run demo`: modelship end to end on the embedded local environment, the way a platform team and a data
// scientist would use it. Brings the environment up (building it the first time), installs the CRD and RBAC
// from the Helm chart, runs the operator as a process under the chart's ServiceAccount (a token of it, so
// it has exactly the chart's permissions), pushes the iris bundle to MinIO, applies examples/iris.yaml pinned
// to the process node (whose pods are real runtime processes), waits for Ready, predicts through the pods'
// endpoints, reads the inference records back from Kafka, and prints what to type next.
// `npm run demo -- --down` stops the operator and the environment.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { predictRemote } from '../cli/oip-client.ts';
import { packBundle } from '../cli/pack.ts';
import { pushBundle } from '../cli/push.ts';
import type { ModelServing } from '../crds/modelserving.schema.ts';
import { readyEndpointUrls } from '../test/env/endpoints.ts';
import { down, type EnvInfo, isHealthy, readEnv, up } from '../test/env/env.ts';
import { readTopic } from '../test/env/kafka.ts';
import { freePort, isAlive, type ProcessRecord, startProcess, stopProcess, tailFile } from '../test/env/process.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const SYSTEM_NS = 'modelship-system';
// MODELSHIP_DEMO_NAMESPACE runs a demo of its own beside another (the test of this script does): its own
// namespace, release (ServiceAccount, Roles, Lease) and state directory, in the same environment.
const MODELS_NS = process.env.MODELSHIP_DEMO_NAMESPACE || 'modelship-demo';
const RELEASE = MODELS_NS === 'modelship-demo' ? 'modelship' : `ms-${MODELS_NS}`.slice(0, 40);
const OPERATOR = `${RELEASE}-operator`;
const stateDir = join(root, '.modelship', 'demo', MODELS_NS);
const stateFile = join(stateDir, 'state.json');
const say = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface DemoState {
  operator: ProcessRecord;
  metricsPort: number;
}

class StepError extends Error {
  constructor(step: string, cause: unknown, logs: string) {
    super(`step "${step}" failed: ${(cause as Error).message ?? cause}${logs ? `\n${logs}` : ''}`);
  }
}

/** Runs one step; on failure names it and shows what `diagnose` gathers (log lines, object states). */
async function step<T>(name: string, fn: () => Promise<T> | T, diagnose: () => Promise<string> = async () => ''): Promise<T> {
  say(`==> ${name}`);
  try {
    return await fn();
  } catch (err) {
    throw new StepError(name, err, await diagnose().catch((e: Error) => `(could not gather diagnostics: ${e.message})`));
  }
}

function tool(bin: string, info: EnvInfo) {
  return (args: string[], input?: string): string => {
    try {
      return execFileSync(bin, args, {
        encoding: 'utf8',
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, KUBECONFIG: info.kubeconfig },
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${bin.split('/').pop()} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
    }
  };
}

async function readState(): Promise<DemoState | undefined> {
  if (!existsSync(stateFile)) return undefined;
  return JSON.parse(await readFile(stateFile, 'utf8')) as DemoState;
}

async function stopOperator(): Promise<boolean> {
  const state = await readState();
  if (!state) return false;
  // SIGTERM: the operator stops its workers and releases its Lease, so the next one leads at once.
  await stopProcess(state.operator, 15_000);
  await rm(stateFile, { force: true });
  return true;
}

async function stopDemo(): Promise<void> {
  if (await stopOperator()) say('stopped the demo operator');
  const info = await readEnv();
  if (info) {
    await down(info);
    say('stopped the local environment (its runtime processes, Kubernetes, MinIO, Kafka) and removed its data');
  } else {
    say('the local environment was not up');
  }
}

/** The ready endpoints of a Service, from its EndpointSlices: where kube-proxy would send traffic. */
function readyEndpoints(kubectl: ReturnType<typeof tool>, service: string): string[] {
  const slices = JSON.parse(
    kubectl(['get', 'endpointslices', '-n', MODELS_NS, '-l', `kubernetes.io/service-name=${service}`, '-o', 'json']),
  );
  return readyEndpointUrls(slices.items);
}

async function main(): Promise<void> {
  if (process.argv.includes('--down')) return stopDemo();
  await mkdir(stateDir, { recursive: true });
  if (await stopOperator()) say('(stopped the operator of an earlier demo run)');

  const info: EnvInfo = await step(
    'local environment (the first run builds Kubernetes, MinIO, Kafka and helm from source: about 12–20 min on 2 cores)',
    async () => {
      const existing = await readEnv();
      if (existing && (await isHealthy(existing))) {
        say('    already up');
        return existing;
      }
      if (existing) await down(existing);
      return up({ progress: (l) => say(`    ${l}`) });
    },
  );
  const kubectl = tool(info.binaries.kubectl, info);
  const helm = tool(info.binaries.helm, info);
  const logs =
    (file: string, n = 25) =>
    async () =>
      `--- last lines of ${file} ---\n${await tailFile(file, n)}`;

  // What a platform team installs: the chart's CRD, ServiceAccount and least-privilege RBAC. Its operator
  // Deployment needs an image this machine cannot build (no container runtime), so the same operator code runs
  // as a process below, with the environment the chart's Deployment would give it.
  const operatorEnv = await step(`install the CRD and RBAC from charts/modelship (helm template, kubectl apply) into ${SYSTEM_NS}`, () => {
    // The models' namespace first: with watchNamespaces the chart grants the operator a Role there.
    for (const name of [SYSTEM_NS, MODELS_NS])
      kubectl(['apply', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
    // helm template does not ask the cluster for its version unless told; the chart requires one.
    const serverVersion = (JSON.parse(kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } }).serverVersion
      .gitVersion;
    const rendered = helm([
      'template',
      '--kube-version',
      serverVersion,
      RELEASE,
      join(root, 'charts/modelship'),
      '-n',
      SYSTEM_NS,
      '--include-crds',
      '--set-json',
      `kafka.bootstrapServers=${JSON.stringify(info.kafka.bootstrapServers)}`,
      // Only the demo's namespace: tests may share this environment with operators of their own.
      '--set-json',
      `watchNamespaces=${JSON.stringify([MODELS_NS])}`,
    ]);
    const docs = parseAllDocuments(rendered)
      .map((d) => d.toJS() as { kind?: string; spec?: any })
      .filter((d) => d?.kind);
    const install = docs.filter((d) =>
      ['CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(d.kind ?? ''),
    );
    // Server-side apply: the CRD carries x-kubernetes-* validations and is too large for the last-applied annotation.
    kubectl(
      ['apply', '--server-side', '--force-conflicts', '--field-manager=modelship-demo', '-f', '-'],
      install.map((d) => stringify(d)).join('---\n'),
    );
    kubectl(['wait', '--for=condition=Established', 'crd/modelservings.modelship.dev', '--timeout=30s']);
    for (const d of install) {
      const meta = (d as { metadata?: { name?: string; namespace?: string } }).metadata;
      say(`    ${d.kind} ${meta?.namespace ? `${meta.namespace}/` : ''}${meta?.name}`);
    }
    const container = docs.find((d) => d.kind === 'Deployment')?.spec?.template?.spec?.containers?.[0];
    const env: Record<string, string> = {};
    for (const e of (container?.env ?? []) as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[]) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = SYSTEM_NS;
    }
    return env;
  });

  const operatorLog = join(info.root, 'logs', 'demo-operator.log');
  const state = await step(
    "run the operator (this checkout's operator/main.ts) as the chart's ServiceAccount",
    async () => {
      const token = kubectl(['create', 'token', OPERATOR, '-n', SYSTEM_NS, '--duration=24h']).trim();
      const kubeconfigFile = join(stateDir, 'operator.kubeconfig');
      await writeFile(
        kubeconfigFile,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'modelship-env', cluster: { server: info.apiServer, 'certificate-authority': info.pki.ca } }],
          users: [{ name: OPERATOR, user: { token } }],
          contexts: [{ name: 'operator', context: { cluster: 'modelship-env', user: OPERATOR } }],
          'current-context': 'operator',
        }),
        { mode: 0o600 },
      );
      const metricsPort = await freePort();
      const operator = startProcess({
        name: 'demo-operator',
        command: process.execPath,
        args: [join(root, 'operator/main.ts')],
        logFile: operatorLog,
        cwd: root,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...operatorEnv,
          KUBECONFIG: kubeconfigFile,
          MODELSHIP_LEASE_NAME: OPERATOR,
          MODELSHIP_OPERATOR_METRICS_PORT: String(metricsPort),
          MODELSHIP_OPERATOR_BIND: '127.0.0.1',
        },
      });
      const s: DemoState = { operator, metricsPort };
      await writeFile(stateFile, JSON.stringify(s, null, 2));
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if (!isAlive(operator)) throw new Error('the operator exited');
        const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ready) {
          say(`    pid ${operator.pid}, holds the Lease ${SYSTEM_NS}/${OPERATOR}, metrics on http://127.0.0.1:${metricsPort}/metrics`);
          return s;
        }
        await sleep(250);
      }
      throw new Error('the operator was not ready within 60 s (it waits for its Lease and its caches)');
    },
    logs(operatorLog),
  );

  const manifest = parseYaml(await readFile(join(root, 'examples/iris.yaml'), 'utf8')) as ModelServing;
  const uri = manifest.spec.bundle.uri;
  const pushed = await step(`pack examples/iris/bundle and push it to ${uri} in MinIO`, async () => {
    const zip = join(stateDir, 'iris.zip');
    const packed = await packBundle(join(root, 'examples/iris/bundle'), zip);
    const r = await pushBundle(packed.file, uri, { ...info.s3 }, { createBucket: true, progress: false });
    say(`    sha256 ${r.sha256} (${r.bytes} bytes)`);
    return r;
  });

  await step(`create the storage Secret minio-credentials in ${MODELS_NS}`, () => {
    kubectl(
      ['apply', '-n', MODELS_NS, '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'minio-credentials' },
        stringData: { accessKey: info.s3.accessKey, secretKey: info.s3.secretKey },
      }),
    );
  });

  const applied = join(stateDir, 'iris.yaml');
  await step(`apply examples/iris.yaml (with this MinIO's endpoint and the pushed sha256) → ${applied}`, async () => {
    const bundle = manifest.spec.bundle;
    bundle.sha256 = pushed.sha256;
    if (bundle.storage) bundle.storage.endpoint = info.s3.endpoint;
    await writeFile(applied, stringify(manifest));
    say(`    ${kubectl(['apply', '-n', MODELS_NS, '-f', applied]).trim()}`);
  });

  const diagnose = async () => {
    const parts: string[] = [];
    const safe = (f: () => string) => {
      try {
        return f();
      } catch (err) {
        return (err as Error).message;
      }
    };
    parts.push(
      `--- kubectl get ms,deploy,pods -n ${MODELS_NS} -o wide ---\n${safe(() => kubectl(['get', 'ms,deploy,pods', '-n', MODELS_NS, '-o', 'wide']))}`,
    );
    parts.push(
      `--- kubectl describe ms iris (conditions and events) ---\n${safe(() => kubectl(['describe', 'ms', 'iris', '-n', MODELS_NS]))}`,
    );
    parts.push(await logs(operatorLog, 15)());
    const node = info.processes['process-node'];
    if (node) parts.push(await logs(node.logFile, 15)());
    return parts.join('\n');
  };

  const replicas = manifest.spec.replicas ?? 1;
  await step(
    `wait for ModelServing iris to be Ready (${replicas} runtime processes fetch the bundle from MinIO and load it)`,
    async () => {
      const deadline = Date.now() + 120_000;
      let last = '';
      while (Date.now() < deadline) {
        const ms = JSON.parse(kubectl(['get', 'ms', 'iris', '-n', MODELS_NS, '-o', 'json'])) as ModelServing;
        const ready = ms.status?.conditions?.find((c) => c.type === 'Ready');
        const line = `Ready=${ready?.status ?? '?'} ${ready?.reason ?? ''} readyReplicas=${ms.status?.readyReplicas ?? 0}/${replicas}`;
        if (line !== last) say(`    ${line}${ready?.message && ready.status !== 'True' ? `: ${ready.message}` : ''}`);
        last = line;
        if (ready?.status === 'True' && ms.status?.observedGeneration === ms.metadata.generation) return;
        // The runtime's own error (bad bundle, init that throws) will not go away by waiting.
        const degraded = ms.status?.conditions?.find((c) => c.type === 'Degraded');
        if (degraded?.status === 'True' && degraded.reason?.startsWith('MS_ERR_'))
          throw new Error(`${degraded.reason}: ${degraded.message}`);
        await sleep(500);
      }
      throw new Error('not Ready within 120 s');
    },
    diagnose,
  );

  const { eps: endpoints, requestIds } = await step(
    'predict three flowers through the ready endpoints of Service iris (its EndpointSlices, as kube-proxy would)',
    async () => {
      const eps = readyEndpoints(kubectl, 'iris');
      if (eps.length === 0) throw new Error('the Service has no ready endpoints');
      const requestIds: string[] = [];
      const flowers = [{ features: [5.1, 3.5, 1.4, 0.2] }, { features: [6.0, 2.9, 4.5, 1.5] }, { features: [6.7, 3.0, 5.2, 2.3] }];
      for (const [i, flower] of flowers.entries()) {
        const url = eps[i % eps.length] as string;
        const { outputs, requestId } = await predictRemote(url, 'iris', [flower]);
        requestIds.push(requestId ?? '');
        const o = outputs[0] as { label: string; probabilities: number[] };
        say(
          `    ${url}  ${JSON.stringify(flower.features)} → ${o.label}  (p ${o.probabilities.map((x) => x.toFixed(3)).join(', ')})  request ${requestId}`,
        );
      }
      return { eps, requestIds };
    },
    diagnose,
  );

  const topic = `modelship.${MODELS_NS}.iris.inference`;
  await step(
    `read the inference records back from Kafka topic ${topic}`,
    async () => {
      // The topic may hold records of earlier runs: read until this run's three requests are there.
      const ours = <R extends { key: string }>(got: R[]) => got.filter((r) => requestIds.includes(r.key));
      const records = ours(await readTopic(info.kafka.bootstrapServers, topic, (got) => ours(got).length >= requestIds.length, 20_000));
      if (records.length < requestIds.length) throw new Error(`only ${records.length} of ${requestIds.length} records arrived within 20 s`);
      for (const r of records) {
        const v = JSON.parse(r.value) as {
          type: string;
          requestId: string;
          latencyMs: number;
          output?: { name: string; data: unknown[] }[];
        };
        const label = v.output?.find((o) => o.name === 'label')?.data;
        say(
          `    partition ${r.partition} offset ${r.offset}: ${v.type} record, request ${v.requestId}, ${v.latencyMs.toFixed(2)} ms, label ${JSON.stringify(label)}`,
        );
      }
    },
    diagnose,
  );

  const first = endpoints[0];
  say(`
modelship is running: the operator (pid ${state.operator.pid}, log ${operatorLog}) reconciled ModelServing
${MODELS_NS}/iris into a Deployment, a Service and a PodDisruptionBudget; its pods are real runtime processes
on node process-node-0 (log ${info.processes['process-node']?.logFile}).
No kube-proxy runs here: reach the pods at their endpoints (the Service's cluster IP leads nowhere).

Try next:
  export KUBECONFIG=${info.kubeconfig} PATH=${dirname(info.binaries.kubectl)}:$PATH
  kubectl get ms -n ${MODELS_NS} -o wide
  kubectl describe ms iris -n ${MODELS_NS}
  kubectl get deploy,svc,pdb,pods,endpointslices -n ${MODELS_NS} -o wide
  npm run modelship -- predict ${first} -m iris -i '{"features": [6.3, 3.3, 6.0, 2.5]}'
  curl -s ${first}/v1/models/iris:predict -H 'content-type: application/json' -d '{"instances": [{"features": [5.9, 3.0, 5.1, 1.8]}]}'
  curl -s ${first}/metrics | grep '^modelship_'
  curl -s http://127.0.0.1:${state.metricsPort}/metrics | grep '^modelship_operator'

From Python (a notebook or a script), a model of your own:
  pip install ./sdk/python
  python -c 'from modelship import Client; c = Client.local(); c.deploy("iris-py", "examples/iris-sklearn", format="python"); print(c.predict("iris-py", {"input": [5.1, 3.5, 1.4, 0.2]}))'

${[
  [`kubectl scale ms iris -n ${MODELS_NS} --replicas=3`, 'a third runtime process starts'],
  [`kubectl edit ms iris -n ${MODELS_NS}`, 'e.g. a wrong sha256: Ready=False, and why'],
  ['npm run env:status', "the environment's components"],
  ['npm run demo -- --down', 'stop everything the demo started'],
]
  .map(([cmd, what]) => `  ${cmd?.padEnd(54)}# ${what}`)
  .join('\n')}
`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exit(1);
  },
);
