// The README's main command, run as a newcomer would (`node scripts/demo.ts`) in a namespace of its own of
// the shared environment: the chart's CRD and RBAC, the operator as the chart's ServiceAccount, iris from
// MinIO on the process node, predictions through the EndpointSlice endpoints, records read back from Kafka.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { binaries } from '../env/build.ts';
import { stopProcess } from '../env/process.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { eventually } from '../env/wait.ts';

const env = useTestEnv();
const root = join(import.meta.dirname, '../..');
let ns = '';
const stateFile = () => join(root, '.modelship', 'demo', ns, 'state.json');

afterAll(async () => {
  if (!ns) return;
  // The demo's operator is still needed here: it runs the topic finalizer of the deleted ModelServing.
  env.kubectl(['delete', 'ms', '--all', '-n', ns, '--wait=false']);
  await eventually(
    async () => env.kubectl(['get', 'ms,pods', '-n', ns, '-o', 'name']).trim() === '',
    'the demo ModelServing and its pods gone',
    60_000,
  ).catch(() => {});
  if (existsSync(stateFile())) await stopProcess(JSON.parse(readFileSync(stateFile(), 'utf8')).operator, 15_000);
  env.kubectl(['delete', 'serviceaccount,role,rolebinding', '-n', 'modelship-system', '-l', `app.kubernetes.io/instance=ms-${ns}`]);
  rmSync(dirname(stateFile()), { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('deploys iris through the operator and shows real predictions, records and the next commands', async () => {
    ns = await env.namespace('demo');
    const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'scripts/demo.ts')], {
      cwd: root,
      env: { ...process.env, MODELSHIP_DEMO_NAMESPACE: ns },
      timeout: 240_000,
      maxBuffer: 4 * 1024 * 1024,
    });
    expect(stdout).toContain('already up'); // the test environment, reused
    expect(stdout).toMatch(new RegExp(`Role ${ns}/ms-${ns}-operator`));
    expect(stdout).not.toContain('ClusterRole'); // watchNamespaces: a Role in the models' namespace only
    expect(stdout).toContain('Ready=True Available readyReplicas=2/2');
    for (const label of ['setosa', 'versicolor', 'virginica'])
      expect(stdout).toMatch(new RegExp(`http://10\\.245\\.\\d+\\.\\d+:8080 .*→ ${label}`));
    expect(stdout.match(/: inference record, request /g)?.length).toBe(3);
    expect(stdout).toContain(`kubectl get ms -n ${ns} -o wide`);
    expect(stdout).toContain('npm run demo -- --down');

    // What it printed is true: the ModelServing is Ready on the process node, made by the demo's operator.
    const ms = JSON.parse(env.kubectl(['get', 'ms', 'iris', '-n', ns, '-o', 'json']));
    expect(ms.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    const pods = JSON.parse(env.kubectl(['get', 'pods', '-n', ns, '-o', 'json'])).items;
    expect(pods.map((p: { spec: { nodeName: string } }) => p.spec.nodeName)).toEqual([env.info.processNode, env.info.processNode]);

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
  }, 500_000);
});
