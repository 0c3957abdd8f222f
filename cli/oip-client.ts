// A small client for a runtime's OIP v2 endpoint: plugin-style input objects in, output objects out.
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

export async function predictRemote(baseUrl: string, model: string, inputs: Record<string, unknown>[]) {
  const url = `${baseUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(model)}/infer`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(toInferRequest(inputs)),
  });
  const body = (await res.json().catch(() => ({}))) as { outputs?: InferOutput[]; error?: string; code?: string };
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${body.code ? `${body.code}: ` : ''}${body.error ?? 'no error body'}`);
  return { requestId: res.headers.get('x-request-id'), outputs: fromInferOutputs(body.outputs ?? []) };
}
