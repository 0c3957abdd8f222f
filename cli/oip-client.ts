// A small client for a runtime's OIP v2 endpoints (REST, or gRPC): plugin-style input objects in, output
// objects out.
import * as grpc from '@grpc/grpc-js';
import type { Datatype } from '../runtime/bundle/manifest.ts';
import { decodeBinary } from '../runtime/protocol/binary.ts';
import { oipPackage } from '../runtime/protocol/grpc-proto.ts';
import type { InferOutput } from '../runtime/protocol/tensors.ts';

function tensorOf(name: string, values: unknown[]) {
  const first = values[0];
  const vec = Array.isArray(first);
  const flat = vec ? (values as unknown[][]).flat() : values;
  const sample = flat[0];
  const datatype = typeof sample === 'string' ? 'BYTES' : typeof sample === 'boolean' ? 'BOOL' : 'FP64';
  return { name, shape: vec ? [values.length, (first as unknown[]).length] : [values.length], datatype, data: flat };
}

/** Input objects (one per instance) → an OIP infer request. Pure. */
export function toInferRequest(inputs: Record<string, unknown>[]) {
  const names = Object.keys(inputs[0] ?? {});
  return {
    inputs: names.map((n) =>
      tensorOf(
        n,
        inputs.map((i) => i[n]),
      ),
    ),
  };
}

/** OIP outputs → one output object per instance. Pure. */
export function fromInferOutputs(outputs: InferOutput[]): Record<string, unknown>[] {
  const batch = outputs[0]?.shape[0] ?? 0;
  return Array.from({ length: batch }, (_, i) => {
    const row: Record<string, unknown> = {};
    for (const o of outputs) {
      const width = o.shape.slice(1).reduce((a, b) => a * b, 1);
      row[o.name] = o.shape.length === 1 ? o.data[i] : o.data.slice(i * width, (i + 1) * width);
    }
    return row;
  });
}

/** An OIP infer answer (status and JSON text) → outputs, or an error naming where and why. */
export function readInferAnswer(where: string, status: number, text: string, requestId: string | null) {
  let body: { outputs?: InferOutput[]; error?: string; code?: string; message?: string } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's answer
  }
  if (status < 200 || status > 299) {
    const why = body.code
      ? `${body.code}: ${body.error ?? ''}`
      : (body.error ?? body.message ?? (text.trim().slice(0, 300) || 'no error body'));
    throw new Error(`${where} answered ${status}: ${why}`);
  }
  return { requestId, outputs: fromInferOutputs(body.outputs ?? []) };
}

export async function predictRemote(baseUrl: string, model: string, inputs: Record<string, unknown>[], token?: string) {
  const url = `${baseUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(model)}/infer`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(toInferRequest(inputs)),
  });
  return readInferAnswer(url, res.status, await res.text(), res.headers.get('x-request-id'));
}

/** The same over OIP gRPC (`host:port`): inputs as typed contents, outputs read from raw_output_contents. */
export async function predictGrpc(target: string, model: string, inputs: Record<string, unknown>[], requestId?: string, token?: string) {
  const Client = oipPackage().inference.GRPCInferenceService;
  const client = new Client(target, grpc.credentials.createInsecure());
  const tensors = toInferRequest(inputs).inputs.map((t) => ({
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    contents:
      t.datatype === 'BYTES'
        ? { bytes_contents: t.data.map((v) => Buffer.from(String(v))) }
        : t.datatype === 'BOOL'
          ? { bool_contents: t.data }
          : { fp64_contents: t.data },
  }));
  type Response = { outputs: { name: string; datatype: string; shape: number[] }[]; raw_output_contents: Buffer[] };
  try {
    const { response, answeredId } = await new Promise<{ response: Response; answeredId: string | undefined }>((resolve, reject) => {
      let answeredId: string | undefined;
      const metadata = new grpc.Metadata();
      if (requestId) metadata.set('x-request-id', requestId);
      if (token) metadata.set('authorization', `Bearer ${token}`);
      const call = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).ModelInfer?.(
        { model_name: model, inputs: tensors },
        metadata,
        (err: grpc.ServiceError | null, res: Response) => {
          if (err) {
            const code = err.metadata?.get('ms-error-code')[0];
            reject(new Error(`${target} answered ${grpc.status[err.code]}: ${code ? `${code}: ` : ''}${err.details}`));
          } else resolve({ response: res, answeredId });
        },
      );
      call?.on('metadata', (md: grpc.Metadata) => {
        answeredId = md.get('x-request-id')[0] as string | undefined;
      });
    });
    const outputs = response.outputs.map((o, i) => {
      const count = o.shape.reduce((a, b) => a * b, 1);
      const data = decodeBinary(o.name, o.datatype, count, response.raw_output_contents[i] ?? new Uint8Array());
      return {
        name: o.name,
        datatype: o.datatype as Datatype,
        shape: o.shape,
        data: Array.from(data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? Number(v) : v)),
      };
    });
    return { requestId: answeredId ?? null, outputs: fromInferOutputs(outputs) };
  } finally {
    client.close();
  }
}
