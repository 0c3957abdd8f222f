// The gRPC adapter on a real grpc-js server and client (loopback): decode → DataPlane.infer → encode, with the data
// plane's admission (UNAVAILABLE + retry-after), deadlines (a gRPC deadline is the caller's: DEADLINE_EXCEEDED, the
// worker thread kept), input errors (INVALID_ARGUMENT with our code) and the request id.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { startGrpc } from '../../runtime/protocol/grpc.ts';
import { oipPackage } from '../../runtime/protocol/grpc-proto.ts';
import { appFor, makeBundle, silent, withApp } from './helpers.ts';

const PLUGIN = `
import { threadId } from 'node:worker_threads';
export async function predict(input) {
  if (input.x < 0) { const end = Date.now() + -input.x; while (Date.now() < end) {} }
  else await new Promise((r) => setTimeout(r, input.x));
  return { y: input.x, thread: threadId };
}
`;

type Reply = { outputs: { name: string }[]; raw_output_contents: Buffer[] };
type Call = { code?: grpc.status; details?: string; metadata?: grpc.Metadata; reply?: Reply };

function client(port: number) {
  const Ctor = oipPackage().inference.GRPCInferenceService;
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    ModelInfer(req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Reply) => void): void;
    close(): void;
  };
}

function infer(c: ReturnType<typeof client>, x: number, deadlineMs?: number, requestId?: string): Promise<Call> {
  const md = new grpc.Metadata();
  if (requestId) md.set('x-request-id', requestId);
  const req = { model_name: 'm', inputs: [{ name: 'x', datatype: 'FP64', shape: [1], contents: { fp64_contents: [x] } }] };
  return new Promise((resolve) =>
    c.ModelInfer(req, md, deadlineMs ? { deadline: Date.now() + deadlineMs } : {}, (err, reply) =>
      resolve(err ? { code: err.code, details: err.details, metadata: err.metadata } : { reply }),
    ),
  );
}

const threadOf = (r: Call) => {
  const i = r.reply?.outputs.findIndex((o) => o.name === 'thread') ?? -1;
  return r.reply?.raw_output_contents[i]?.readDoubleLE(0);
};

describe('the gRPC adapter', () => {
  it('refuses beyond the admission bounds with UNAVAILABLE, our code and retry-after', async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': PLUGIN }), { name: 'm', admission: { maxConcurrency: 1, maxQueue: 1 } }),
      async ({ app }) => {
        const server = await startGrpc(app.plane, { host: '127.0.0.1', port: 0, log: silent, maxMessageBytes: 1 << 20 });
        const c = client(server.port);
        try {
          const calls = await Promise.all([infer(c, 100), infer(c, 100), infer(c, 100), infer(c, 100)]);
          const refused = calls.filter((r) => r.code === grpc.status.UNAVAILABLE);
          expect(calls.filter((r) => r.reply).length).toBe(2);
          expect(refused.length).toBe(2);
          for (const r of refused) {
            expect(r.metadata?.get('ms-error-code')).toEqual(['MS_ERR_MODEL_OVERLOADED']);
            expect(Number(r.metadata?.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
          }
          const bad = await new Promise<Call>((resolve) =>
            c.ModelInfer(
              { model_name: 'm', inputs: [{ name: 'x', datatype: 'FP64', shape: [2], contents: { fp64_contents: [1] } }] },
              new grpc.Metadata(),
              {},
              (err) => resolve({ code: err?.code, metadata: err?.metadata }),
            ),
          );
          expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
          expect(bad.metadata?.get('ms-error-code')).toEqual(['MS_ERR_TENSOR_SHAPE']);
        } finally {
          c.close();
          await server.close(1000);
        }
      },
    );
  });

  it("takes a gRPC deadline as the caller's: DEADLINE_EXCEEDED, and the worker thread lives on", async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': PLUGIN }), { name: 'm', workers: 1, requestTimeoutMs: 10_000 }),
      async ({ app, metrics }) => {
        const server = await startGrpc(app.plane, { host: '127.0.0.1', port: 0, log: silent, maxMessageBytes: 1 << 20 });
        const c = client(server.port);
        try {
          const thread = threadOf(await infer(c, 0, undefined, 'first'));
          const late = await infer(c, -300, 50);
          expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
          // The server answered it so (not only the client's own deadline): a 504 of ours, counted.
          await expect
            .poll(async () =>
              (await metrics.registry.metrics()).includes('modelship_requests_total{model="m",protocol="grpc",status="504"} 1'),
            )
            .toBe(true);
          await new Promise((r) => setTimeout(r, 400));
          const next = await infer(c, 0);
          expect(threadOf(next)).toBe(thread);
        } finally {
          c.close();
          await server.close(1000);
        }
      },
    );
  });
});
