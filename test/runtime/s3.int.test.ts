// The runtime against the real MinIO of the local environment: bundles fetched from S3, verified, refused.
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import { loadConfig } from '../../runtime/config.ts';
import { start } from '../../runtime/server.ts';
import { eventually } from '../../env/wait.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { silent } from './helpers.ts';

const env = useTestEnv();
const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
let bucket: string;
let zip: string;
let sha256: string;

async function runtimeFor(vars: Record<string, string>) {
  const config = loadConfig({
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: '0',
    MODELSHIP_MODEL_NAME: 'iris',
    MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-s3-')),
    MODELSHIP_S3_ENDPOINT: env.info.s3.endpoint,
    MODELSHIP_S3_ACCESS_KEY: env.info.s3.accessKey,
    MODELSHIP_S3_SECRET_KEY: env.info.s3.secretKey,
    MODELSHIP_FETCH_TIMEOUT_MS: '20000',
    ...vars,
  });
  return start(config, silent);
}

const body = JSON.stringify({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [6.7, 3.0, 5.2, 2.3] }] });
const infer = (url: string) =>
  fetch(`${url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

beforeAll(async () => {
  bucket = await env.bucket('bundles');
  zip = join(await mkdtemp(join(tmpdir(), 'ms-zip-')), 'iris.zip');
  const packed = await packBundle(IRIS, zip);
  const pushed = await pushBundle(zip, `s3://${bucket}/iris/1/bundle.zip`, { ...env.info.s3 }, { progress: false });
  expect(pushed.sha256).toBe(packed.sha256);
  sha256 = pushed.sha256;
});

describe('runtime with bundles in MinIO', () => {
  it('fetches, verifies the pinned sha256, unpacks and serves', async () => {
    const rt = await runtimeFor({ MODELSHIP_BUNDLE_URI: `s3://${bucket}/iris/1/bundle.zip`, MODELSHIP_BUNDLE_SHA256: sha256 });
    try {
      await rt.loaded;
      expect(rt.model.bundleSha256).toBe(sha256);
      const r = await infer(rt.url);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { outputs: { data: unknown[] }[] }).outputs[0]?.data).toEqual(['virginica']);
      const metrics = await (await fetch(`${rt.url}/metrics`)).text();
      const bytes = Number(/modelship_bundle_download_bytes_total (\d+)/.exec(metrics)?.[1]);
      expect(bytes).toBe((await readFile(zip)).length);
    } finally {
      await rt.shutdown();
    }
  });

  it('refuses a bundle whose sha256 does not match: not ready, expected vs actual', async () => {
    const wrong = 'ab'.repeat(32);
    const rt = await runtimeFor({ MODELSHIP_BUNDLE_URI: `s3://${bucket}/iris/1/bundle.zip`, MODELSHIP_BUNDLE_SHA256: wrong });
    try {
      await expect(rt.loaded).rejects.toMatchObject({
        code: 'MS_ERR_BUNDLE_SHA256_MISMATCH',
        message: `bundle s3://${bucket}/iris/1/bundle.zip sha256 mismatch: expected ${wrong}, got ${sha256}`,
      });
      const ready = await fetch(`${rt.url}/v2/health/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, status: 'failed', reason: expect.stringContaining('sha256 mismatch') });
      expect((await infer(rt.url)).status).toBe(503);
    } finally {
      await rt.shutdown();
    }
  });

  it('names a missing object, and never the credentials', async () => {
    const rt = await runtimeFor({ MODELSHIP_BUNDLE_URI: `s3://${bucket}/nope/bundle.zip` });
    try {
      const err = (await rt.loaded.catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('MS_ERR_BUNDLE_NOT_FOUND');
      expect(err.message).toBe(`bundle s3://${bucket}/nope/bundle.zip not found (NoSuchKey)`);
    } finally {
      await rt.shutdown();
    }
  });

  it('reports denied access for wrong credentials without echoing them', async () => {
    const rt = await runtimeFor({
      MODELSHIP_BUNDLE_URI: `s3://${bucket}/iris/1/bundle.zip`,
      MODELSHIP_S3_SECRET_KEY: 'definitely-wrong-secret',
    });
    try {
      const err = (await rt.loaded.catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('MS_ERR_BUNDLE_ACCESS_DENIED');
      expect(err.message).not.toContain('definitely-wrong-secret');
      expect(err.message).not.toContain(env.info.s3.accessKey);
    } finally {
      await rt.shutdown();
    }
  });

  it('bounds the getObject request itself by the fetch deadline: an endpoint that accepts and never answers', async () => {
    const held: Socket[] = [];
    let closed = 0;
    const silentS3 = createNetServer((socket) => {
      held.push(socket);
      socket.on('close', () => closed++);
      socket.resume(); // reads the request, never answers
    });
    await new Promise<void>((r) => silentS3.listen(0, '127.0.0.1', r));
    const port = (silentS3.address() as { port: number }).port;
    try {
      const t0 = performance.now();
      const rt = await runtimeFor({
        MODELSHIP_BUNDLE_URI: `s3://${bucket}/iris/1/bundle.zip`,
        MODELSHIP_S3_ENDPOINT: `http://127.0.0.1:${port}`,
        MODELSHIP_FETCH_TIMEOUT_MS: '700',
      });
      try {
        const err = (await rt.loaded.catch((e: unknown) => e)) as Error & { code: string };
        expect(err.code).toBe('MS_ERR_BUNDLE_FETCH_TIMEOUT');
        expect(err.message).toBe(`fetching bundle s3://${bucket}/iris/1/bundle.zip timed out after 1 s`);
        expect(performance.now() - t0).toBeLessThan(5000);
        // The request reached the endpoint (it was the answer that never came), and its socket was closed.
        expect(held.length).toBeGreaterThan(0);
        await eventually(async () => closed === held.length, 'the client closed its sockets', 5000);
      } finally {
        await rt.shutdown();
      }
    } finally {
      for (const s of held) s.destroy();
      silentS3.close();
    }
  });

  it('drains under load on shutdown with zero failed requests', async () => {
    const rt = await runtimeFor({ MODELSHIP_BUNDLE_URI: `s3://${bucket}/iris/1/bundle.zip` });
    await rt.loaded;
    let ok = 0;
    let failed = 0;
    let stop = false;
    // 20 clients send back-to-back until the server stops accepting new connections.
    const clients = Array.from({ length: 20 }, async () => {
      while (!stop) {
        let r: Response;
        try {
          r = await infer(rt.url);
        } catch {
          break; // refused: the listener is closed, the request was never accepted
        }
        if (r.status === 200) ok++;
        else failed++;
        await r.arrayBuffer();
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    await rt.shutdown();
    stop = true;
    await Promise.all(clients);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(20);
  });
});

describe('runtime with bundles over HTTP', () => {
  it('retries transient errors, then serves; a 404 is NOT_FOUND', async () => {
    const data = await readFile(zip);
    let calls = 0;
    const server = createServer((req, res) => {
      if (req.url?.split('?')[0] === '/iris.zip') {
        calls++;
        if (calls < 3) {
          res.writeHead(503).end('busy');
          return;
        }
        res.writeHead(200, { 'content-length': data.length }).end(data);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const rt = await runtimeFor({
        MODELSHIP_BUNDLE_URI: `http://127.0.0.1:${port}/iris.zip?X-Amz-Signature=secret`,
        MODELSHIP_BUNDLE_SHA256: sha256,
      });
      await rt.loaded;
      expect(calls).toBe(3);
      expect((await infer(rt.url)).status).toBe(200);
      await rt.shutdown();
      const missing = await runtimeFor({ MODELSHIP_BUNDLE_URI: `http://127.0.0.1:${port}/missing.zip?X-Amz-Signature=secret` });
      const err = (await missing.loaded.catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('MS_ERR_BUNDLE_NOT_FOUND');
      expect(err.message).toBe(`bundle http://127.0.0.1:${port}/missing.zip?… not found (HTTP 404)`);
      await missing.shutdown();
    } finally {
      server.close();
    }
  });

  it('gives up on a download that stalls, naming the URI and the bound', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1_000_000 });
      res.write(Buffer.alloc(1000)); // then nothing more
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const rt = await runtimeFor({ MODELSHIP_BUNDLE_URI: `http://127.0.0.1:${port}/slow.zip`, MODELSHIP_FETCH_TIMEOUT_MS: '700' });
      const err = (await rt.loaded.catch((e: unknown) => e)) as Error & { code: string };
      expect(err.code).toBe('MS_ERR_BUNDLE_FETCH_TIMEOUT');
      expect(err.message).toBe(`fetching bundle http://127.0.0.1:${port}/slow.zip timed out after 1 s`);
      await rt.shutdown();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
