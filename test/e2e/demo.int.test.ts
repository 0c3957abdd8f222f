// The README's main command, run as a newcomer would (`node scripts/demo.ts`) in a namespace of its own of
// the shared environment: helm installs the operator from the image built here, iris from MinIO on the real
// node, predictions through the Service's cluster IP, records read back from Kafka; then the next steps it
// prints, as printed: kubectl logs and port-forward, modelship predict and logs, and the Python client.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { binaries } from '../../env/build.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { portForward } from '../../env/on-node.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();
const root = join(import.meta.dirname, '../..');
let ns = '';
const stateDir = () => join(root, '.modelship', 'demo', ns);
const release = () => `ms-${ns}`.slice(0, 40);

afterAll(async () => {
  if (!ns) return;
  // The demo's operator is still needed here: it runs the topic finalizer of the deleted ModelServing.
  env.kubectl(['delete', 'ms', '--all', '-n', ns, '--wait=false']);
  await eventually(
    async () => env.kubectl(['get', 'ms,pods', '-n', ns, '-o', 'name']).trim() === '',
    'the demo ModelServing and its pods gone',
    60_000,
  ).catch(() => {});
  execFileSync(env.info.binaries.helm, ['uninstall', release(), '-n', 'modelship-system', '--kubeconfig', env.info.kubeconfig], {
    stdio: 'ignore',
  });
  rmSync(stateDir(), { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('deploys iris through the operator and shows real predictions, records and the next commands', async () => {
    ns = await env.namespace('demo', { nodes: 'any' });
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'scripts/demo.ts')], {
      cwd: root,
      env: { ...process.env, MODELSHIP_DEMO_NAMESPACE: ns },
      timeout: 240_000,
      maxBuffer: 4 * 1024 * 1024,
    });
    expect(stdout).toContain('already up'); // the test environment, reused
    expect(stdout).toMatch(new RegExp(`pod ${release()}-operator-\\S+ on node real-node-0`));
    expect(stdout).toContain('Ready=True Available readyReplicas=2/2');
    for (const label of ['setosa', 'versicolor', 'virginica']) expect(stdout).toMatch(new RegExp(`\\] → ${label} .*request \\S+`));
    expect(stdout.match(/: inference record, request /g)?.length).toBe(3);
    expect(stdout).toContain(`kubectl get ms -n ${ns} -o wide`);
    expect(stdout).toContain('npm run demo -- --down');

    // What it printed is true: the ModelServing is Ready on the real node, made by the helm-installed operator.
    const ms = JSON.parse(env.kubectl(['get', 'ms', 'iris', '-n', ns, '-o', 'json']));
    expect(ms.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    const pods = JSON.parse(env.kubectl(['get', 'pods', '-n', ns, '-o', 'json'])).items;
    expect(pods.map((p: { spec: { nodeName: string } }) => p.spec.nodeName)).toEqual(['real-node-0', 'real-node-0']);

    // The next steps, as printed (kubectl and npm from this checkout's environment).
    const printed = (prefix: string) => {
      const line = stdout.split('\n').find((l) => l.trim().startsWith(prefix));
      expect(line, prefix).toBeDefined();
      return line?.trim() as string;
    };
    const shell = (line: string) =>
      promisify(execFile)('bash', ['-c', line], {
        cwd: root,
        env: { ...process.env, KUBECONFIG: env.info.kubeconfig, PATH: `${join(env.info.binaries.kubectl, '..')}:${process.env.PATH}` },
        timeout: 60_000,
      });
    expect((await shell(printed(`kubectl logs -n ${ns} deploy/iris`))).stdout).toMatch(/^\{"level":/m);
    expect((await shell(printed('kubectl logs -n modelship-system deploy/'))).stdout).toMatch(/^\{"level":/m);
    expect((await shell(printed('npm run modelship -- predict iris'))).stdout).toContain('virginica');
    expect((await shell(printed('npm run modelship -- logs iris'))).stdout).toMatch(/^iris-\S+ \{"level":/m);
    const pfLine = printed(`kubectl port-forward -n ${ns} svc/iris`).replace(/ &$/, '').replace('8080:80', ':80');
    const { port, close } = await portForward(['bash', '-c', `exec ${pfLine}`], {
      ...process.env,
      KUBECONFIG: env.info.kubeconfig,
      PATH: `${join(env.info.binaries.kubectl, '..')}:${process.env.PATH}`,
    });
    try {
      const curl = printed('curl -s localhost:8080/v1/models/iris:predict').replace('localhost:8080', `localhost:${port}`);
      expect((await shell(curl)).stdout).toContain('"label":"virginica"');
    } finally {
      close();
    }

    // The Python path it printed, as printed (the namespace is this test's own), with the environment's Python.
    expect(stdout).toContain('c = Client.local();');
    const script = /python -c '([^']+)'/s.exec(stdout)?.[1] as string;
    expect(script).toContain('c.deploy("iris-py"');
    const py = await promisify(execFile)(binaries().python, ['-c', script], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: join(root, 'sdk/python'), MODELSHIP_DEMO_NAMESPACE: ns },
      timeout: 200_000,
    });
    expect(py.stdout).toMatch(/'predict': 0/);

    // Models of one's own with the CLI, as printed: no profile, no KUBECONFIG, no flags but the namespace: the
    // CLI takes the local environment as its profile. A Hopsworks bundle, then Fusion's Keras sentiment
    // model, whose requirements.txt (TensorFlow) the pods install through the environment's index proxy.
    const home = mkdtempSync(join(tmpdir(), 'demo-home-'));
    const asUser = (line: string, timeout = 120_000) =>
      promisify(execFile)('bash', ['-c', line], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: home },
        timeout,
        maxBuffer: 4 * 1024 * 1024,
      });
    const hopsworks = await asUser(printed('npm run modelship -- deploy examples/hopsworks-iris'), 240_000);
    expect(hopsworks.stderr).toContain('using the local environment');
    expect(hopsworks.stderr).toMatch(/^Ready=True/m);
    // npm prints its banner first: the answer is the JSON after it.
    const answer = (stdout: string) => JSON.parse(stdout.slice(stdout.search(/^[{[]/m)));
    expect(answer((await asUser(printed('npm run modelship -- predict hopsworks-iris'))).stdout)).toMatchObject({ predictions: 0 });
    // Its pod's installer is killed in the middle of installing TensorFlow (the pod force-deleted): the lock dies
    // with it, and the replacement pod installs, clearing what the killed one left.
    type Pod = { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } };
    const sentimentPods = () =>
      JSON.parse(env.kubectl(['get', 'pods', '-n', ns, '-l', 'modelship.dev/model=sentiment', '-o', 'json'])).items as Pod[];
    const installLog = (pod: string) => {
      try {
        return env.kubectl(['logs', '-n', ns, pod, '-c', 'install']);
      } catch {
        return '';
      }
    };
    const deploying = asUser(printed('npm run modelship -- deploy examples/fusion-sentiment'), 900_000);
    const killed = await eventually(
      async () => sentimentPods().find((p) => installLog(p.metadata.name).includes('requirements.txt: installing with uv'))?.metadata.name,
      'the first sentiment pod installing',
      300_000,
    );
    expect(installLog(killed)).toMatch(/"index":"pypi\.pypi\.svc".*requirements\.txt: installing with uv/); // through the index proxy
    await new Promise((r) => setTimeout(r, 3000));
    env.kubectl(['delete', 'pod', killed, '-n', ns, '--grace-period=0', '--force']);
    const sentiment = await deploying;
    expect(sentiment.stderr).toMatch(/^Ready=True/m);
    const [installer] = sentimentPods().filter((p) => p.metadata.name !== killed);
    const installerLog = installLog(installer?.metadata.name as string);
    expect(installerLog).toContain('requirements.txt: installing with uv');
    const installed = installerLog.split('\n').find((l) => l.includes('requirements.txt: installed'));
    const installSeconds = JSON.parse(installed as string).seconds as number;
    const say = async (text: string) =>
      answer((await asUser(`npm run modelship -- predict sentiment -n ${ns} -i '${JSON.stringify({ input: text })}'`)).stdout);
    expect(await say('a wonderful, moving film with a brilliant cast')).toMatchObject({ sentiment: 'positive' });
    expect(await say('a dull, boring and awful waste of time')).toMatchObject({ sentiment: 'negative' });

    // The chart's shared environment cache, on a volume of the environment's: the operator made the namespace's
    // claim. Three replicas: the two new ones find the environment there (verified, not installed again), all Ready
    // within the install time plus 30 s, and no pod ever fails to import.
    const claim = JSON.parse(env.kubectl(['get', 'pvc', 'python-envs', '-n', ns, '-o', 'json']));
    expect(claim.status.phase).toBe('Bound');
    expect(claim.spec.storageClassName).toBe(env.info.realNode?.storageClass);
    const scaled = performance.now();
    env.kubectl(['patch', 'ms', 'sentiment', '-n', ns, '--type', 'merge', '-p', '{"spec":{"replicas":3}}']);
    const ready = await eventually(
      async () => {
        const all = sentimentPods().filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return all.length === 3 ? all.map((p) => p.metadata.name) : undefined;
      },
      'three sentiment replicas Ready',
      300_000,
    );
    expect((performance.now() - scaled) / 1000).toBeLessThan(installSeconds + 30);
    const installing = ready.filter((p) => installLog(p).includes('requirements.txt: installing with uv'));
    expect(installing).toEqual([installer?.metadata.name]);
    for (const p of ready) {
      if (p !== installer?.metadata.name) expect(installLog(p)).toContain('requirements.txt: environment found in the cache');
      expect(env.kubectl(['logs', '-n', ns, p, '-c', 'runtime'])).not.toMatch(/ImportError|ModuleNotFoundError/);
    }
  }, 1_500_000);
});
