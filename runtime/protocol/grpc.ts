// OIP v2 over gRPC (`inference.GRPCInferenceService`, ./proto/grpc_predict_v2.proto) and gRPC health
// (`grpc.health.v1`), on their own port: decode → DataPlane.infer → encode, as REST, so the model check,
// admission, deadlines, input checks, metrics, inference records and error codes are the same. Tensors arrive
// as typed `contents` or as `raw_input_contents`; outputs always go back as `raw_output_contents` (what
// Triton's clients read). A call's deadline (grpc-timeout) is the caller's deadline, as TIMEOUT_HEADER is over
// HTTP. An error's gRPC status comes from its HTTP one; our code rides in the `ms-error-code` trailer.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type AuthGate, callerAuthorization, FORWARDED_AUTH_HEADER } from '../auth/gate.ts';
import { TIMEOUT_HEADER } from '../contract.ts';
import { type DataPlane, requestIdFrom } from '../dataplane.ts';
import { isModelshipError, type ModelshipError, msError } from '../errors.ts';
import { encodeBinary } from './binary.ts';
import { oipPackage } from './grpc-proto.ts';
import { type InferInput, inputsForRecord, inputsToRows, rowsToOutputs } from './tensors.ts';

const UNDECODABLE = Symbol('undecodable');

interface Contents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: number[];
  uint_contents: number[];
  uint64_contents: number[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
}
type Parameter = { bool_param?: boolean; int64_param?: number; string_param?: string; double_param?: number; uint64_param?: number };
interface InferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, Parameter>;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Record<string, Parameter>; contents: Contents | null }[];
  outputs: { name: string; parameters: Record<string, Parameter> }[];
  raw_input_contents: Buffer[];
}

/** gRPC status for one of our HTTP statuses. Pure. */
export function grpcStatus(http: number): grpc.status {
  switch (http) {
    case 400:
    case 415:
      return grpc.status.INVALID_ARGUMENT;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 403:
      return grpc.status.PERMISSION_DENIED;
    case 404:
      return grpc.status.NOT_FOUND;
    case 405:
    case 501:
      return grpc.status.UNIMPLEMENTED;
    case 413:
      return grpc.status.RESOURCE_EXHAUSTED;
    case 503:
      return grpc.status.UNAVAILABLE;
    case 504:
      return grpc.status.DEADLINE_EXCEEDED;
    default:
      return grpc.status.INTERNAL;
  }
}

function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const e: ModelshipError = isModelshipError(err)
    ? err
    : msError('MS_ERR_SERVER_INTERNAL', { detail: (err as Error)?.message ?? String(err) });
  const metadata = new grpc.Metadata();
  metadata.set('ms-error-code', e.code);
  if (e.retryAfterSeconds !== undefined) metadata.set('retry-after', String(e.retryAfterSeconds));
  return { code: grpcStatus(e.statusCode), details: e.message, metadata };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A request tensor's typed contents as the data array of its datatype. */
function contentsData(name: string, datatype: string, c: Contents | null): unknown[] {
  if (!c) throw msError('MS_ERR_TENSOR_DATA', { name, detail: 'has neither contents nor raw_input_contents' });
  switch (datatype) {
    case 'BOOL':
      return c.bool_contents;
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return c.int_contents;
    case 'INT64':
      return c.int64_contents;
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
      return c.uint_contents;
    case 'UINT64':
      return c.uint64_contents;
    case 'FP32':
      return c.fp32_contents;
    case 'FP64':
      return c.fp64_contents;
    case 'BYTES':
      return c.bytes_contents.map((b, i) => {
        try {
          return utf8.decode(b);
        } catch {
          throw msError('MS_ERR_TENSOR_DATA', { name, detail: `element ${i} is not valid UTF-8` });
        }
      });
    default:
      throw msError('MS_ERR_TENSOR_DATATYPE', { name, datatype: JSON.stringify(datatype) });
  }
}

function parameterValue(p: Parameter): unknown {
  return p.bool_param ?? p.int64_param ?? p.string_param ?? p.double_param ?? p.uint64_param;
}

function plainParameters(params: Record<string, Parameter>): Record<string, unknown> | undefined {
  const keys = Object.keys(params);
  if (keys.length === 0) return undefined;
  return Object.fromEntries(keys.map((k) => [k, parameterValue(params[k] as Parameter)]));
}

export interface GrpcServer {
  port: number;
  /** Stops taking calls and waits for those in flight (bounded), then closes. */
  close(graceMs: number): Promise<void>;
}

export async function startGrpc(
  plane: DataPlane,
  o: { host: string; port: number; log: Logger; maxMessageBytes: number; auth?: AuthGate | undefined },
): Promise<GrpcServer> {
  const pkg = oipPackage();
  const { model } = plane;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': -1,
  });

  /** A unary handler: our errors become gRPC statuses with our code. */
  const unary =
    <Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => {
          undecodable(call.request);
          return fn(call.request, call);
        })
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            const overload = isModelshipError(err) && (err.code === 'MS_ERR_MODEL_OVERLOADED' || err.code === 'MS_ERR_PREDICT_TIMEOUT');
            if ((!isModelshipError(err) || err.statusCode >= 500) && !overload)
              o.log.error({ err, rpc: call.getPath() }, 'gRPC call failed');
            callback(toServiceError(err) as grpc.ServiceError);
          },
        );
    };

  const tensorMeta = (t: { name: string; datatype: string; shape: number[] }) => ({ name: t.name, datatype: t.datatype, shape: t.shape });

  // A message that is not valid protobuf is the caller's mistake: it reaches the handler as such (grpc-js
  // would answer INTERNAL), to be refused with INVALID_ARGUMENT and our code.
  const service = { ...pkg.inference.GRPCInferenceService.service };
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    service[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return { [UNDECODABLE]: (err as Error).message };
        }
      },
    };
  }
  const undecodable = (req: unknown) => {
    const why = (req as Record<symbol, string>)[UNDECODABLE];
    if (why !== undefined) throw msError('MS_ERR_REQUEST_INVALID', { detail: `the message is not valid protobuf: ${why}` });
  };

  server.addService(service, {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: model.ready })),
    ModelReady: unary((req: { name: string; version: string }) => {
      plane.checkModel(req.name, req.version || undefined);
      return { ready: model.ready };
    }),
    ServerMetadata: unary(() => plane.serverMetadata()),
    ModelMetadata: unary((req: { name: string; version: string }) => {
      plane.checkModel(req.name, req.version || undefined);
      const m = plane.metadata();
      return {
        name: m.name,
        versions: m.versions,
        platform: m.platform,
        inputs: m.inputs.map(tensorMeta),
        outputs: m.outputs.map(tensorMeta),
      };
    }),
    ModelInfer: unary(async (req: InferRequest, call) => {
      const auth = call.metadata.get('authorization')[0];
      const forwarded = call.metadata.get(FORWARDED_AUTH_HEADER)[0];
      await o.auth?.check(auth, forwarded);
      const requestId = requestIdFrom(call.metadata.get('x-request-id')[0]);
      const raw = req.raw_input_contents;
      const requested = req.outputs.length > 0 ? req.outputs.map((r) => r.name) : undefined;
      const parameters = plainParameters(req.parameters);
      let inputs: InferInput[] | undefined;
      let tail: Buffer | undefined;
      const decoded = () => {
        if (raw.length > 0 && raw.length !== req.inputs.length) {
          throw msError('MS_ERR_REQUEST_INVALID', {
            detail: `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs`,
          });
        }
        inputs ??= req.inputs.map((t, i) =>
          raw.length > 0
            ? { name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: (raw[i] as Buffer).length } }
            : { name: t.name, datatype: t.datatype, shape: t.shape, data: contentsData(t.name, t.datatype, t.contents) },
        );
        tail ??= raw.length > 0 ? Buffer.concat(raw) : undefined;
        return inputs;
      };
      const deadline = call.getDeadline();
      const grpcMs =
        deadline instanceof Date ? deadline.getTime() - Date.now() : Number.isFinite(deadline) ? deadline - Date.now() : undefined;
      const header = Number(call.metadata.get(TIMEOUT_HEADER)[0]);
      const callerMs = [grpcMs, Number.isInteger(header) && header > 0 ? header : undefined].filter((v): v is number => v !== undefined);
      return plane.infer({
        protocol: 'grpc',
        requestId,
        model: req.model_name,
        version: req.model_version || undefined,
        inferenceId: req.id || undefined,
        callerTimeout: callerMs.length ? Math.max(1, Math.floor(Math.min(...callerMs))) : undefined,
        authorization: callerAuthorization(auth, forwarded),
        opts: { ...(requested ? { outputs: requested } : {}), ...(parameters ? { parameters } : {}) },
        decode: () => inputsToRows(decoded(), tail),
        recordInput: () => inputsForRecord(decoded(), tail),
        encode: (predictions) => {
          const outputs = rowsToOutputs(predictions, model.outputs, requested);
          const sent = new grpc.Metadata();
          sent.set('x-request-id', requestId);
          call.sendMetadata(sent);
          return {
            response: {
              model_name: model.name,
              model_version: model.version ?? '',
              id: req.id || requestId,
              outputs: outputs.map(tensorMeta),
              raw_output_contents: outputs.map((t) => encodeBinary(t.name, t.datatype, t.data)),
            },
            recorded: outputs,
          };
        },
      });
    }),
  });

  const HEALTH_SERVICES = new Set(['', 'inference.GRPCInferenceService']);
  const healthStatus = (service: string) => {
    if (!HEALTH_SERVICES.has(service)) throw msError('MS_ERR_MODEL_NOT_FOUND', { name: service, served: [...HEALTH_SERVICES].join(', ') });
    return { status: model.ready ? 'SERVING' : 'NOT_SERVING' };
  };
  server.addService(pkg.grpc.health.v1.Health.service, {
    Check: unary((req: { service: string }) => healthStatus(req.service)),
    Watch: (call: grpc.ServerWritableStream<{ service: string }, { status: string }>) => {
      let last = '';
      const send = () => {
        try {
          const s = healthStatus(call.request.service);
          if (s.status !== last) {
            last = s.status;
            call.write(s);
          }
        } catch {
          if (last !== 'SERVICE_UNKNOWN') {
            last = 'SERVICE_UNKNOWN';
            call.write({ status: last });
          }
        }
      };
      send();
      const timer = setInterval(send, 1000);
      call.on('cancelled', () => clearInterval(timer));
      call.on('close', () => clearInterval(timer));
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(msError('MS_ERR_LISTEN_FAILED', { protocol: 'gRPC', address: `${o.host}:${o.port}`, detail: err.message })) : resolve(p),
    );
  });
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
