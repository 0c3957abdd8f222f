// `npm run demo`: modelship end to end on the embedded local environment, the way a platform team and a data
// scientist would use it. Brings the environment up (building it the first time), `helm install`s the chart
// with the operator image built here, pushes the iris bundle to MinIO, applies examples/iris.yaml (its pods on
// the real node: kubelet, containerd, the runtime image), waits for Ready, predicts through the Service's
// cluster IP (from the node, as on any node), reads the inference records back from Kafka, and prints what to
// type next. `npm run demo -- --down` uninstalls the release and stops the environment.
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify } from 'yaml';
import { packBundle } from '../cli/pack.ts';
import { pushBundle } from '../cli/push.ts';
import type { ModelServing } from '../crds/modelserving.schema.ts';
import { SERVER_VERSION } from '../common/version.ts';
import { down, type EnvInfo, ensureReadOnlyUser, isHealthy, readEnv, up } from '../env/env.ts';
import { readTopic } from '../env/kafka.ts';
import { applyLocalVolumes, LOCAL_STORAGE_CLASS } from '../env/volumes.ts';
import { RUNTIME_UID } from '../runtime/contract.ts';
import { applyKafkaSaslSecret, fromNode, kafkaValues } from '../env/on-node.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const SYSTEM_NS = 'modelship-system';
// The demo's operator watches every namespace, as a platform team's would. MODELSHIP_DEMO_NAMESPACE runs a
// demo of its own beside it (the test of this script does): its own models' namespace, claimed for its own
// release (operator Deployment, ServiceAccount, Roles, Lease) by the label modelship.dev/operator, so the
// first demo's operator leaves it alone.
const MODELS_NS = process.env.MODELSHIP_DEMO_NAMESPACE || 'modelship-demo';
const SECOND = MODELS_NS !== 'modelship-demo';
const RELEASE = SECOND ? `ms-${MODELS_NS}`.slice(0, 40) : 'modelship';
/** Where the printed next steps deploy: any namespace for the demo's operator, the second demo's own for it. */
const TRY_NS = SECOND ? MODELS_NS : 'ml';
const OPERATOR = `${RELEASE}-operator`;
const stateDir = join(root, '.modelship', 'demo', MODELS_NS);
const say = (msg: string) => process.stdout.write(`${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

async function stopDemo(): Promise<void> {
  const info = await readEnv();
  if (!info) {
    say('the local environment was not up');
    return;
  }
  await down(info);
  say('stopped the local environment (its node and pods, Kubernetes, MinIO, Kafka) and removed its data');
}

async function main(): Promise<void> {
  if (process.argv.includes('--down')) return stopDemo();
  await mkdir(stateDir, { recursive: true });

  const info: EnvInfo = await step(
    'local environment (the first run builds Kubernetes, containerd, MinIO, Kafka, helm and the images from source: about 30 min on 2 cores)',
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
  const node = info.realNode;
  if (!node) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0): npm run env:down, then npm run demo');
  const kubectl = tool(info.binaries.kubectl, info);
  const helm = tool(info.binaries.helm, info);

  const operatorLogs = () => {
    try {
      return `--- kubectl logs -n ${SYSTEM_NS} deploy/${OPERATOR} --tail 20 ---\n${kubectl(['logs', '-n', SYSTEM_NS, `deploy/${OPERATOR}`, '--tail', '20'])}`;
    } catch (err) {
      return (err as Error).message;
    }
  };

  // What a platform team does: helm install, with the operator image built here from operator/Dockerfile.
  await step(
    `helm install ${RELEASE} charts/modelship -n ${SYSTEM_NS} (operator image modelship/operator:${SERVER_VERSION}, built here)`,
    async () => {
      for (const name of [SYSTEM_NS, MODELS_NS])
        kubectl(['apply', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
      if (SECOND) kubectl(['label', 'namespace', MODELS_NS, '--overwrite', `modelship.dev/operator=${RELEASE}`]);
      // Kafka takes pods only with credentials: the operator's namespace and the models' get the Secret.
      applyKafkaSaslSecret(info, [SYSTEM_NS, MODELS_NS]);
      // The node's volumes (env/volumes.ts; made again here for an environment started before they existed, and
      // those whose namespace was deleted are offered again).
      await applyLocalVolumes(info.binaries.kubectl, info.kubeconfig, {
        dir: join(info.root, 'volumes'),
        node: node.name,
        uid: RUNTIME_UID,
      });
      const values = {
        image: { tag: SERVER_VERSION, pullPolicy: 'Never' },
        // The environment's Kafka and package index by their Service names, as on a team's cluster.
        kafka: kafkaValues(info),
        // A shared environment cache per model namespace, on the node's volumes: a second replica does not install.
        python: {
          indexUrl: node.pythonIndexUrl,
          envCache: { claimName: 'python-envs', storageClassName: node.storageClass ?? LOCAL_STORAGE_CLASS },
        },
        // Every namespace (but those another release claims); a second demo's release, its own only.
        watchNamespaces: SECOND ? [MODELS_NS] : [],
      };
      const valuesFile = join(stateDir, 'values.yaml');
      await writeFile(valuesFile, stringify(values));
      helm([
        'upgrade',
        '--install',
        RELEASE,
        join(root, 'charts/modelship'),
        '-n',
        SYSTEM_NS,
        '-f',
        valuesFile,
        '--wait',
        '--timeout',
        '180s',
      ]);
      const pod = JSON.parse(kubectl(['get', 'pods', '-n', SYSTEM_NS, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'json']))
        .items[0];
      say(`    pod ${pod?.metadata?.name} on node ${pod?.spec?.nodeName}, values ${valuesFile}`);
    },
    async () => {
      try {
        return kubectl(['get', 'pods,events', '-n', SYSTEM_NS, '-o', 'wide']);
      } catch (err) {
        return (err as Error).message;
      }
    },
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

  await step(
    `create the storage Secret minio-credentials in ${MODELS_NS} (MinIO's read-only user: pods never get write keys)`,
    async () => {
      const readOnly = (await ensureReadOnlyUser(info)).s3.readOnly as { accessKey: string; secretKey: string };
      kubectl(
        ['apply', '-n', MODELS_NS, '-f', '-'],
        stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'minio-credentials' },
          stringData: { accessKey: readOnly.accessKey, secretKey: readOnly.secretKey },
        }),
      );
    },
  );

  const applied = join(stateDir, 'iris.yaml');
  await step(`apply examples/iris.yaml (as it is written, with the pushed sha256 filled in) → ${applied}`, async () => {
    manifest.spec.bundle.sha256 = pushed.sha256;
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
    parts.push(operatorLogs());
    return parts.join('\n');
  };

  const replicas = manifest.spec.replicas ?? 1;
  await step(
    `wait for ModelServing iris to be Ready (${replicas} pods of modelship/runtime fetch the bundle from MinIO and load it)`,
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

  const clusterIp = JSON.parse(kubectl(['get', 'svc', 'iris', '-n', MODELS_NS, '-o', 'json'])).spec.clusterIP as string;
  const requestIds = await step(
    `predict three flowers through Service iris (cluster IP ${clusterIp}, from the node: kube-proxy picks a pod)`,
    async () => {
      const ids: string[] = [];
      const flowers = [
        [5.1, 3.5, 1.4, 0.2],
        [6.0, 2.9, 4.5, 1.5],
        [6.7, 3.0, 5.2, 2.3],
      ];
      for (const features of flowers) {
        const r = await fromNode(info, `http://${clusterIp}/v1/models/iris:predict`, JSON.stringify({ instances: [{ features }] }));
        if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body}`);
        const answer = JSON.parse(r.body) as { predictions: { label: string; probabilities: number[] }[] };
        const p = answer.predictions[0] as { label: string; probabilities: number[] };
        ids.push(r.requestId ?? '');
        say(
          `    ${JSON.stringify(features)} → ${p.label}  (p ${p.probabilities.map((x) => x.toFixed(3)).join(', ')})  request ${r.requestId}`,
        );
      }
      return ids;
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
        const v = JSON.parse(r.value) as { type: string; requestId: string; latencyMs: number; pod?: string };
        say(`    partition ${r.partition} offset ${r.offset}: ${v.type} record, request ${v.requestId}, ${v.latencyMs.toFixed(2)} ms`);
      }
    },
    diagnose,
  );

  say(`
modelship is running: the operator (Deployment ${SYSTEM_NS}/${OPERATOR}, installed by helm) reconciled
ModelServing ${MODELS_NS}/iris into a Deployment, a Service and a PodDisruptionBudget; its pods run the
modelship/runtime image on node ${node.name} (kubelet + containerd).

Try next:
  export KUBECONFIG=${info.kubeconfig} PATH=${dirname(info.binaries.kubectl)}:$PATH
  kubectl get ms -n ${MODELS_NS} -o wide
  kubectl describe ms iris -n ${MODELS_NS}
  kubectl get deploy,svc,pdb,pods -n ${MODELS_NS} -o wide
  kubectl logs -n ${MODELS_NS} deploy/iris --tail 5
  kubectl logs -n ${SYSTEM_NS} deploy/${OPERATOR} --tail 5
  npm run modelship -- predict iris -n ${MODELS_NS} -i '{"features": [6.3, 3.3, 6.0, 2.5]}'
  npm run modelship -- logs iris -n ${MODELS_NS} --tail 3
  kubectl port-forward -n ${MODELS_NS} svc/iris 8080:80 &
  curl -s localhost:8080/v1/models/iris:predict -H 'content-type: application/json' -d '{"instances": [{"features": [5.9, 3.0, 5.1, 1.8]}]}'
  curl -s localhost:8080/metrics | grep '^modelship_'
  kubectl top pods -n ${MODELS_NS}

Models of your own, in ${SECOND ? 'its namespace' : 'any namespace'}, with no flags: the CLI takes this environment as its profile while it
is up (its cluster, its MinIO, bucket models; pods install requirements.txt through its package index proxy):
  npm run modelship -- deploy examples/hopsworks-iris -n ${TRY_NS} --wait
  npm run modelship -- predict hopsworks-iris -n ${TRY_NS} -i examples/hopsworks-iris/test-input.json
  npm run modelship -- deploy examples/fusion-sentiment --name sentiment -n ${TRY_NS} --memory 3Gi --wait    # Fusion's Keras model: installs TensorFlow
  npm run modelship -- predict sentiment -n ${TRY_NS} -i '{"input": "a wonderful, moving film"}'

From Python (a notebook or a script), a model of your own:
  pip install ./sdk/python
  python -c 'from modelship import Client; c = Client.local(); c.deploy("iris-py", "examples/iris-sklearn", format="python"); print(c.predict("iris-py", {"input": [5.1, 3.5, 1.4, 0.2]}))'

${[
  [`kubectl scale ms iris -n ${MODELS_NS} --replicas=3`, 'a third pod starts'],
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
