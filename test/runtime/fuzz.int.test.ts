// Malformed requests by the thousand, over REST and gRPC, against a runtime in a process of its own: every
// answer is an error with our code (a 4xx, INVALID_ARGUMENT/NOT_FOUND over gRPC), the process stays up, and
// its memory comes back to its baseline. Seeded, so a failure replays.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oipPackage } from '../../runtime/protocol/grpc-proto.ts';
import { freePorts } from '../../env/process.ts';
import { eventually } from '../../env/wait.ts';

const ROOT = join(import.meta.dirname, '../..');
const IRIS = join(ROOT, 'examples/iris/bundle');
const COUNT = 5000;
let child: ChildProcess;
let base: string;
let grpcTarget: string;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

beforeAll(async () => {
  const [port, gport] = (await freePorts(2)) as [number, number];
  child = spawn(process.execPath, [join(ROOT, 'runtime/main.ts')], {
    env: {
      PATH: process.env.PATH,
      MODELSHIP_BUNDLE_URI: IRIS,
      MODELSHIP_MODEL_NAME: 'iris',
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      MODELSHIP_GRPC_PORT: String(gport),
      MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-fuzz-')),
      MODELSHIP_LOG_LEVEL: 'fatal',
      MODELSHIP_TERMINATION_LOG: join(tmpdir(), `ms-fuzz-${process.pid}.log`),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  base = `http://127.0.0.1:${port}`;
  grpcTarget = `127.0.0.1:${gport}`;
  await eventually(async () => (await fetch(`${base}/v2/health/ready`).catch(() => undefined))?.ok || undefined, 'runtime ready', 30_000);
});
afterAll(() => {
  child?.kill('SIGKILL');
});

const JSON_HEADERS = { 'content-type': 'application/json' };
const valid = () => ({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2] }] });

/** One malformed REST request: each kind is invalid by construction. */
function restCase(rand: () => number, i: number): { body: Buffer | string; headers: Record<string, string>; url?: string } {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)] as T;
  const json = (v: unknown) => ({ body: JSON.stringify(v), headers: { 'content-type': 'application/json' } });
  const binary = (header: unknown, tail: Buffer) => {
    const h = Buffer.from(JSON.stringify(header));
    return {
      body: Buffer.concat([h, tail]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(h.length) },
    };
  };
  const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  switch (i % 14) {
    case 0: // not JSON at all
      return { body: junk(1 + Math.floor(rand() * 200)), headers: { 'content-type': 'application/json' } };
    case 1: // truncated JSON
      return { body: JSON.stringify(valid()).slice(0, Math.floor(rand() * 60)), headers: { 'content-type': 'application/json' } };
    case 2: // an unknown datatype
      return json({ inputs: [{ ...valid().inputs[0], datatype: pick(['FP128', 'float', '', 'INT3', 'fp32']) }] });
    case 3: // shape vs data
      return json({ inputs: [{ ...valid().inputs[0], shape: [1, 1 + Math.floor(rand() * 9) + 4] }] });
    case 4: // huge declared shape, binary
      return binary(
        { inputs: [{ name: 'features', shape: [65536, 65536, 4], datatype: 'FP64', parameters: { binary_data_size: 8 } }] },
        junk(8),
      );
    case 5: // truncated binary section
      return binary(
        { inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }] },
        junk(Math.floor(rand() * 31)),
      );
    case 6: // binary size that disagrees with the shape
      return binary({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 24 } }] }, junk(24));
    case 7: // invalid UTF-8 in a BYTES tensor
      return binary(
        { inputs: [{ name: 'features', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }] },
        Buffer.from([2, 0, 0, 0, 0xc3, 0x28]),
      );
    case 8: // a wrong tensor name
      return json({ inputs: [{ ...valid().inputs[0], name: `x${Math.floor(rand() * 1e6)}` }] });
    case 9: // a header length beyond the body
      return {
        body: '{}',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(3 + Math.floor(rand() * 1e9)) },
      };
    case 10: // wrong types in the schema
      return json(
        pick([
          { inputs: 'x' },
          { inputs: [{ name: 1 }] },
          { inputs: [] },
          [],
          'string',
          null,
          { inputs: [{ ...valid().inputs[0], shape: [-1, 4] }] },
        ]),
      );
    case 11: // deeply nested data
      return json({ inputs: [{ ...valid().inputs[0], data: JSON.parse('['.repeat(40) + ']'.repeat(40)) }] });
    case 12: // another model
      return { ...json(valid()), url: `/v2/models/m${i}/infer` };
    default: // a non-JSON content type
      return {
        body: 'features=1,2,3,4',
        headers: { 'content-type': pick(['text/plain', 'application/x-www-form-urlencoded', 'image/png']) },
      };
  }
}

describe('fuzz', () => {
  it(`answers ${COUNT} malformed REST requests with a coded 4xx and stays up`, async () => {
    const rand = prng(1234);
    await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(valid()) });
    const before = rssKb(child.pid as number);
    const seen = new Map<string, number>();
    for (let start = 0; start < COUNT; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, k) => {
          const c = restCase(rand, start + k);
          const r = await fetch(`${base}${c.url ?? '/v2/models/iris/infer'}`, { method: 'POST', headers: c.headers, body: c.body });
          const body = (await r.json()) as { code?: string; error?: string };
          if (r.status < 400 || r.status >= 500 || !/^MS_ERR_[A-Z_]+$/.test(body.code ?? '') || !body.error) {
            throw new Error(`case ${start + k}: ${r.status} ${JSON.stringify(body)}`);
          }
          seen.set(body.code as string, (seen.get(body.code as string) ?? 0) + 1);
        }),
      );
    }
    expect(child.exitCode).toBeNull();
    expect([...seen.keys()].sort()).toEqual([
      'MS_ERR_INPUT_INVALID',
      'MS_ERR_MODEL_NOT_FOUND',
      'MS_ERR_REQUEST_BAD_JSON',
      'MS_ERR_REQUEST_CONTENT_TYPE',
      'MS_ERR_REQUEST_INVALID',
      'MS_ERR_TENSOR_DATA',
      'MS_ERR_TENSOR_DATATYPE',
      'MS_ERR_TENSOR_SHAPE',
    ]);
    // The process still serves, and its memory comes back near where it was.
    const ok = await fetch(`${base}/v2/models/iris/infer`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(valid()) });
    expect(ok.status).toBe(200);
    await eventually(
      async () => (rssKb(child.pid as number) < before + 64 * 1024 ? true : undefined),
      `RSS back under ${before + 65536} kB`,
      20_000,
    );
  });

  it(`answers ${COUNT} malformed gRPC calls with INVALID_ARGUMENT (or NOT_FOUND) and our code, and stays up`, async () => {
    const rand = prng(99);
    const client = new (oipPackage().inference.GRPCInferenceService)(grpcTarget, grpc.credentials.createInsecure());
    // Raw bytes for the calls that are not protobuf at all.
    const rawCall = (bytes: Buffer) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest(
          '/inference.GRPCInferenceService/ModelInfer',
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err) => resolve(err),
        );
      });
    const infer = (req: unknown) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        (client as unknown as Record<string, (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void>).ModelInfer?.(req, (e) =>
          resolve(e),
        );
      });
    const features = { name: 'features', datatype: 'FP64', shape: [1, 4] };
    const before = rssKb(child.pid as number);
    const codes = new Map<string, number>();
    for (let start = 0; start < COUNT; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, k) => {
          const i = start + k;
          let err: grpc.ServiceError | null;
          switch (i % 8) {
            case 0:
              err = await rawCall(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))));
              break;
            case 1:
              err = await infer({ model_name: 'iris', inputs: [features], raw_input_contents: [Buffer.alloc(Math.floor(rand() * 31))] });
              break;
            case 2:
              err = await infer({
                model_name: 'iris',
                inputs: [{ ...features, datatype: 'FP128' }],
                raw_input_contents: [Buffer.alloc(32)],
              });
              break;
            case 3:
              err = await infer({
                model_name: 'iris',
                inputs: [{ ...features, shape: [1e6, 1e6] }],
                raw_input_contents: [Buffer.alloc(8)],
              });
              break;
            case 4:
              err = await infer({ model_name: 'iris', inputs: [{ ...features, name: 'petals' }], raw_input_contents: [Buffer.alloc(32)] });
              break;
            case 5:
              err = await infer({
                model_name: 'iris',
                inputs: [{ name: 'features', datatype: 'BYTES', shape: [1] }],
                raw_input_contents: [Buffer.from([2, 0, 0, 0, 0xff, 0xfe])],
              });
              break;
            case 6:
              err = await infer({ model_name: 'iris', inputs: [features, features], raw_input_contents: [Buffer.alloc(32)] });
              break;
            default:
              err = await infer({ model_name: `nope-${i}`, inputs: [features] });
          }
          const code = err?.metadata?.get('ms-error-code')[0];
          if (
            !err ||
            (err.code !== grpc.status.INVALID_ARGUMENT && err.code !== grpc.status.NOT_FOUND) ||
            typeof code !== 'string' ||
            !/^MS_ERR_/.test(code)
          ) {
            throw new Error(`call ${i}: ${err ? `${grpc.status[err.code]} ${code} ${err.details}` : 'succeeded'}`);
          }
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }),
      );
    }
    client.close();
    expect(child.exitCode).toBeNull();
    expect(codes.get('MS_ERR_REQUEST_INVALID')).toBeGreaterThan(0);
    expect(codes.get('MS_ERR_TENSOR_DATA')).toBeGreaterThan(0);
    expect(codes.get('MS_ERR_MODEL_NOT_FOUND')).toBeGreaterThan(0);
    await eventually(
      async () => (rssKb(child.pid as number) < before + 64 * 1024 ? true : undefined),
      `RSS back under ${before + 65536} kB`,
      20_000,
    );
  });
});
