// `modelship deploy`, `status` and `delete` against the real local environment: the kubeconfig's cluster,
// MinIO from the environment's variables, the operator reconciling (in-process), pods on the process node.
// A JS and a Python bundle deployed and Ready; the same bundle again uploads nothing and writes nothing;
// --dry-run's YAML applied with kubectl gives the same object; a broken bundle exits non-zero with its
// reason; a missing bucket, wrong credentials and an unreachable cluster each say what to fix.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect, postThroughApiServer } from '../../cli/cluster.ts';
import { canonical } from '../../cli/deploy.ts';
import { run } from '../../cli/modelship.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { binaries } from '../../env/build.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { freePort } from '../../env/process.ts';
import { eventually } from '../../env/wait.ts';
import { captureConsole } from './console.ts';

const env = useTestEnv();
const EXAMPLES = join(import.meta.dirname, '../../examples');
const { out, err } = captureConsole();
let ns: string;
let bucket: string;
let controller: ModelServingController;
const ms = env.modelServings(() => ns);
/** Pods on the process node, whose pods are real runtime processes. */
const PIN = ['--node-selector', 'type=process', '--tolerate', 'modelship.dev/process-node'];

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('cli-deploy', { nodes: 'any' });
  bucket = await env.bucket('cli-deploy');
  controller = new ModelServingController(
    env.kubeConfig,
    { ...DEFAULT_CONFIG, namespaces: [ns], workers: 2, preStopSeconds: 1, drainSeconds: 2 },
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    new OperatorMetrics({ processMetrics: false }),
  );
  await controller.start();
}, 120_000);
afterAll(async () => {
  await controller?.stop();
});

beforeEach(() => {
  vi.stubEnv('KUBECONFIG', env.info.kubeconfig);
  vi.stubEnv('MODELSHIP_CONFIG', '/nonexistent/modelship-config.yaml');
  vi.stubEnv('MODELSHIP_BUCKET', bucket);
  vi.stubEnv('MODELSHIP_S3_ENDPOINT', env.info.s3.endpoint);
  vi.stubEnv('MODELSHIP_S3_ACCESS_KEY', env.info.s3.accessKey);
  vi.stubEnv('MODELSHIP_S3_SECRET_KEY', env.info.s3.secretKey);
  // What the cluster gets: the environment's read-only user, never the keys above.
  vi.stubEnv('MODELSHIP_S3_CLUSTER_ACCESS_KEY', env.info.s3.readOnly?.accessKey);
  vi.stubEnv('MODELSHIP_S3_CLUSTER_SECRET_KEY', env.info.s3.readOnly?.secretKey);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

const deploy = (...args: string[]) => run(['deploy', ...args, '-n', ns, ...PIN]);
const bundleObjects = async () => {
  const names: string[] = [];
  for await (const o of env.minio().listObjectsV2(bucket, 'bundles/', true)) if (o.name) names.push(o.name);
  return names;
};

describe('modelship deploy', () => {
  it('deploys a JS bundle and waits for Ready; the same bundle again uploads nothing and writes nothing', async () => {
    expect(await deploy(join(EXAMPLES, 'iris/bundle'), '--name', 'iris', '--wait', '--timeout', '120')).toBe(0);
    expect(out.at(-1)).toMatch(/^iris: http:\/\/iris\./);
    expect(err.some((l) => /^uploaded \d+ bytes to s3:\/\/.+\/bundles\/[0-9a-f]{64}\.zip$/.test(l))).toBe(true);
    // Not a terminal here: progress comes as lines, each time another quarter is sent, up to 100%.
    const progress = err.filter((l) => /^uploading: (25|50|75|100)% \(\d+ of \d+ bytes\)$/.test(l));
    expect(progress.at(-1)).toMatch(/^uploading: 100% \((\d+) of \1 bytes\)$/);
    expect(err.some((l) => l.startsWith('Ready=True'))).toBe(true);
    const first = await ms.get('iris');
    expect(first.spec.bundle.uri).toBe(`s3://${bucket}/bundles/${first.spec.bundle.sha256}.zip`);
    const managers = (first.metadata as { managedFields?: { manager?: string }[] }).managedFields?.map((f) => f.manager);
    expect(managers).toContain('modelship-cli');
    // No credential in what the CLI printed.
    expect([...out, ...err].join('\n')).not.toContain(env.info.s3.secretKey);
    expect(await bundleObjects()).toEqual([`bundles/${first.spec.bundle.sha256}.zip`]);

    expect(await deploy(join(EXAMPLES, 'iris/bundle'), '--name', 'iris', '--wait')).toBe(0);
    expect(err).toContain(
      `bundle ${first.spec.bundle.sha256?.slice(0, 12)} is already in s3://${bucket}/bundles/${first.spec.bundle.sha256}.zip: no upload`,
    );
    expect(err).toContain(`ModelServing ${ns}/iris is unchanged: no write`);
    // The spec was not written again (the operator's status writes move resourceVersion, never generation).
    expect((await ms.get('iris')).metadata.generation).toBe(first.metadata.generation);
  });

  it('predicts by name through the API server; a redeploy of a changed bundle under that load fails no request', async () => {
    expect(await run(['predict', 'iris', '-n', ns, '-i', '{"features": [6.7, 3.0, 5.2, 2.3]}'])).toBe(0);
    expect(JSON.parse(out.at(-1) as string)).toMatchObject({ label: 'virginica' });
    expect(err.at(-1)).toMatch(/^request id [0-9a-f-]{36}$/);
    expect(await run(['predict', 'iris', '-n', ns, '-i', '{"petals": [1]}'])).toBe(1);
    expect(err.at(-1)).toMatch(
      /^modelship: ModelServing .*\/iris \(through https:\/\/127\.0\.0\.1:\d+\) answered 400: MS_ERR_INPUT_INVALID: /,
    );

    const c = await connect(ns);
    const body = { inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2] }] };
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const client = async () => {
      while (running) {
        try {
          const r = await postThroughApiServer(c, 'iris', '/v2/models/iris/infer', body);
          if (r.status === 200) ok++;
          else failures.push(`${r.status}: ${r.text.slice(0, 200)}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    };
    const load = Promise.all([client(), client(), client()]);
    const changed = await mkdtemp(join(tmpdir(), 'cli-iris-2-'));
    await cp(join(EXAMPLES, 'iris/bundle'), changed, { recursive: true });
    await writeFile(join(changed, 'NOTES.txt'), 'version 2\n');
    const before = (await ms.get('iris')).spec.bundle.sha256;
    expect(await deploy(changed, '--name', 'iris', '--wait', '--timeout', '120')).toBe(0);
    const after = await ms.get('iris');
    expect(after.spec.bundle.sha256).not.toBe(before);
    await eventually(
      async () => {
        const m = await ms.get('iris');
        const progressing = m.status?.conditions?.find((x) => x.type === 'Progressing');
        return progressing?.reason === 'RolloutComplete' && m.status?.bundle?.sha256 === after.spec.bundle.sha256;
      },
      'the rollout to the changed bundle complete',
      120_000,
    );
    running = false;
    await load;
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
  });

  it('logs: the pods of a ModelServing through the API server; the process node has no kubelet to serve them', async () => {
    // Until the real node (#14) the API server has no kubelet to ask: each pod says so, and the command fails.
    expect(await run(['logs', 'iris', '-n', ns, '--tail', '5'])).toBe(1);
    const pods = out.filter((l) => /^iris-[a-z0-9]+-[a-z0-9]+: cannot read its logs through the API server: /.test(l));
    expect(pods.length).toBeGreaterThan(0);
    process.stderr.write(`modelship logs on the process node: ${pods[0]}\n`);
    expect(err.at(-1)).toBe(`modelship: no logs could be read from the pods of ${ns}/iris`);
    expect(await run(['logs', 'nothing-here', '-n', ns])).toBe(4);
    expect(err.at(-1)).toBe(`modelship: MS_ERR_CLI_NOT_FOUND: no ModelServing ${ns}/nothing-here`);
  });

  it('deploys a Python bundle (its format told from its files) and shows it in status; delete removes it', async () => {
    expect(await deploy(join(EXAMPLES, 'iris-sklearn'), '--name', 'iris-py', '--wait', '--timeout', '120')).toBe(0);
    expect(out.at(-1)).toMatch(/^iris-py: http:\/\//);
    expect((await ms.get('iris-py')).spec.bundle.format).toBe('python');
    // The storage Secret holds the read-only keys, not the uploader's.
    const secretName = (await ms.get('iris-py')).spec.bundle.storage?.secretRef?.name as string;
    const secret = JSON.parse(env.kubectl(['get', 'secret', secretName, '-n', ns, '-o', 'json']));
    expect(Buffer.from(secret.data.accessKey, 'base64').toString()).toBe(env.info.s3.readOnly?.accessKey);
    expect(JSON.stringify(secret)).not.toContain(Buffer.from(env.info.s3.secretKey).toString('base64'));
    expect(await run(['status', 'iris-py', '-n', ns])).toBe(0);
    const summary = out.find((l) => l.startsWith(`${ns}/iris-py: Ready=True`));
    expect(summary).toMatch(/1\/1 replicas ready/);
    expect(out.some((l) => /^ {2}BundleReady=True Loaded/.test(l))).toBe(true);
    expect(await run(['status', '-n', ns])).toBe(0);
    expect(out.some((l) => /^iris-py: Ready=True/.test(l))).toBe(true);
    expect(await run(['delete', 'iris-py', '-n', ns])).toBe(0);
    expect(out.at(-1)).toBe(`deleted ModelServing ${ns}/iris-py`);
    expect(await run(['delete', 'iris-py', '-n', ns])).toBe(4);
    expect(err.at(-1)).toBe(`modelship: MS_ERR_CLI_NOT_FOUND: no ModelServing ${ns}/iris-py`);
  });

  it('--dry-run prints the ModelServing without writing it; kubectl applying that YAML gives the same object', async () => {
    expect(await deploy(join(EXAMPLES, 'echo'), '--name', 'echo', '--replicas', '1', '--dry-run')).toBe(0);
    const yaml = out.join('\n');
    expect(yaml).toContain('kind: ModelServing');
    expect(yaml).not.toContain(env.info.s3.secretKey);
    expect(await ms.gone('echo')).toBe(true);
    env.kubectl(['apply', '--server-side', '--field-manager', 'gitops', '-f', '-'], yaml);
    const fromYaml = await ms.get('echo');
    // The CLI's own deploy of the same bundle finds every field in place: nothing to write.
    expect(await deploy(join(EXAMPLES, 'echo'), '--name', 'echo', '--replicas', '1')).toBe(0);
    expect(err).toContain(`ModelServing ${ns}/echo is unchanged: no write`);
    const after = await ms.get('echo');
    expect(after.metadata.generation).toBe(fromYaml.metadata.generation);
    const managers = (after.metadata as { managedFields?: { manager?: string; operation?: string }[] }).managedFields ?? [];
    expect(managers.map((f) => f.manager)).toContain('gitops');
    expect(managers.map((f) => f.manager)).not.toContain('modelship-cli');
    expect(canonical(after.spec)).toBe(canonical(fromYaml.spec));
  });

  it('a broken bundle exits non-zero with the reason from the status', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-broken-'));
    await writeFile(join(dir, 'predict.mjs'), 'export function predict( { return 1 }\n');
    expect(await deploy(dir, '--name', 'broken', '--wait', '--timeout', '90')).toBe(1);
    expect(err.at(-1)).toMatch(new RegExp(`^modelship: MS_ERR_PLUGIN_LOAD: ModelServing ${ns}/broken failed: .*predict\\.mjs`));
  });

  it('the Python client (sdk/python, over the CLI): deploy a JS and a Python bundle, predict, a broken one raises, delete', async () => {
    const { stdout, stderr } = await promisify(execFile)(binaries().python, [join(import.meta.dirname, 'python_client_check.py')], {
      timeout: 400_000,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KUBECONFIG: env.info.kubeconfig,
        MODELSHIP_CONFIG: '/nonexistent/modelship-config.yaml',
        PYTHONPATH: join(import.meta.dirname, '../../sdk/python'),
        NODE: process.execPath,
        CLI: join(import.meta.dirname, '../../cli/modelship.ts'),
        EXAMPLES,
        NS: ns,
        BUCKET: bucket,
        S3_ENDPOINT: env.info.s3.endpoint,
        S3_ACCESS_KEY: env.info.s3.accessKey,
        S3_SECRET_KEY: env.info.s3.secretKey,
        S3_CLUSTER_ACCESS_KEY: env.info.s3.readOnly?.accessKey ?? '',
        S3_CLUSTER_SECRET_KEY: env.info.s3.readOnly?.secretKey ?? '',
      },
    }).catch((e: { stdout: string; stderr: string; message: string }) => {
      throw new Error(`${e.message}\n--- stdout ---\n${e.stdout}\n--- stderr ---\n${e.stderr}`);
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(seen.echo).toBeDefined();
    expect(seen.again).toMatchObject({ uploaded: false });
    expect(seen.broken.code).toBe('MS_ERR_PLUGIN_LOAD');
    expect(seen.broken.message).toMatch(new RegExp(`^ModelServing ${ns}/broken-py failed: loading plugin predict\\.mjs failed`));
    expect(seen.badInput).toMatch(/answered 400: MS_ERR_INPUT_INVALID/);
    expect(seen.deleted).toBe(true);
    // What the CLI reported while it worked reached the caller's stderr (a notebook shows it).
    expect(stderr).toMatch(/^Ready=True/m);
    expect(stderr).not.toContain(env.info.s3.secretKey);
  }, 420_000);

  it('a missing bucket, wrong credentials and an unreachable cluster each name what to fix', async () => {
    vi.stubEnv('MODELSHIP_BUCKET', 'no-such-bucket-here');
    expect(await deploy(join(EXAMPLES, 'echo'), '--name', 'x')).toBe(1);
    expect(err.at(-1)).toBe(
      `modelship: MS_ERR_CLI_BUCKET_MISSING: bucket no-such-bucket-here does not exist at ${env.info.s3.endpoint}: create it (modelship push --create-bucket) or set storage.bucket / $MODELSHIP_BUCKET`,
    );
    vi.stubEnv('MODELSHIP_BUCKET', bucket);
    vi.stubEnv('MODELSHIP_S3_SECRET_KEY', 'not-the-secret');
    expect(await deploy(join(EXAMPLES, 'echo'), '--name', 'x')).toBe(1);
    expect(err.at(-1)).toMatch(
      /^modelship: MS_ERR_CLI_STORAGE_DENIED: the object store at .* refused the credentials \((SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId)\): set MODELSHIP_S3_ACCESS_KEY\/MODELSHIP_S3_SECRET_KEY/,
    );
    expect(err.join('\n')).not.toContain('not-the-secret');
    vi.stubEnv('MODELSHIP_S3_SECRET_KEY', env.info.s3.secretKey);
    // A port nobody listens on (freePort closes it again).
    const closed = await freePort();
    const kubeconfig = join(await mkdtemp(join(tmpdir(), 'cli-kc-')), 'config');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: gone, cluster: {server: "https://127.0.0.1:${closed}"}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: gone, context: {cluster: gone, user: u}}]',
        'current-context: gone',
      ].join('\n'),
    );
    vi.stubEnv('KUBECONFIG', kubeconfig);
    expect(await deploy(join(EXAMPLES, 'echo'), '--name', 'x')).toBe(1);
    expect(err.at(-1)).toMatch(
      new RegExp(
        `^modelship: MS_ERR_CLI_CLUSTER_UNREACHABLE: cannot reach the cluster of kubeconfig context "gone" at https://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\); check \\$KUBECONFIG`,
      ),
    );
  });
});
