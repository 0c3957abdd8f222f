// Open Inference Protocol (KServe v2) REST endpoints: decode → DataPlane.infer → encode.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { callerAuthorization } from '../auth/gate.ts';
import { FORWARDED_AUTH_HEADER, TIMEOUT_HEADER } from '../contract.ts';
import type { DataPlane } from '../dataplane.ts';
import { type FeedbackBody, FeedbackSchema } from './feedback.ts';
import { encodeBinary } from './binary.ts';
import { binaryTail, HEADER_LENGTH } from './body.ts';
import { type InferInput, type InferOutput, inputsForRecord, inputsToRows, rowsToOutputs } from './tensors.ts';

const Parameters = Type.Record(Type.String(), Type.Unknown());

export const InferRequestSchema = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 256 })),
  parameters: Type.Optional(Parameters),
  inputs: Type.Array(
    Type.Object({
      name: Type.String({ minLength: 1, maxLength: 256 }),
      shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 32 }),
      datatype: Type.String({ maxLength: 16 }),
      data: Type.Optional(Type.Array(Type.Unknown())),
      parameters: Type.Optional(Parameters),
    }),
    { minItems: 1, maxItems: 1024 },
  ),
  outputs: Type.Optional(
    Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), parameters: Type.Optional(Parameters) }), { maxItems: 1024 }),
  ),
});

type InferBody = Static<typeof InferRequestSchema>;

/** Which outputs go back as binary: all with `binary_data_output`, else those asking `binary_data`. */
function binaryOutputs(body: InferBody): ((name: string) => boolean) | undefined {
  const perOutput = new Map<string, boolean>();
  for (const o of body.outputs ?? []) if (typeof o.parameters?.binary_data === 'boolean') perOutput.set(o.name, o.parameters.binary_data);
  const all = body.parameters?.binary_data_output === true;
  if (!all && ![...perOutput.values()].some(Boolean)) return undefined;
  return (name) => perOutput.get(name) ?? all;
}

const NameParams = Type.Object({ name: Type.String() });
const VersionParams = Type.Object({ name: Type.String(), version: Type.String() });
type ModelParams = { name: string; version?: string };

export function registerV2(app: FastifyInstance, plane: DataPlane): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = plane;

  r.get('/v2', () => plane.serverMetadata());

  // The model repository extension: this server's one model and its state.
  const RepositoryIndexSchema = Type.Object({ ready: Type.Optional(Type.Boolean()) });
  r.post('/v2/repository/index', { schema: { body: Type.Optional(RepositoryIndexSchema) } }, (req) => {
    const entry = {
      name: model.name,
      ...(model.version ? { version: model.version } : {}),
      state: model.ready ? 'READY' : model.status === 'loading' ? 'LOADING' : 'UNAVAILABLE',
      ...(model.ready ? {} : { reason: model.reason }),
    };
    return req.body?.ready && !model.ready ? [] : [entry];
  });

  const metadata = () => {
    const { versions, ...rest } = plane.metadata();
    return versions.length ? { ...rest, versions } : rest;
  };
  const ready = (reply: { code(n: number): unknown }) => {
    if (!model.ready) reply.code(503);
    return { name: model.name, ready: model.ready };
  };
  // The model is checked before the body, so a request to the wrong model is a 404 whatever its body.
  const preValidation = async (req: { params: unknown }) => {
    const p = req.params as ModelParams;
    plane.checkModel(p.name, p.version);
  };
  for (const [prefix, params] of [
    ['/v2/models/:name', NameParams],
    ['/v2/models/:name/versions/:version', VersionParams],
  ] as const) {
    r.get(prefix, { schema: { params }, preValidation }, () => metadata());
    r.get(`${prefix}/ready`, { schema: { params }, preValidation }, (_req, reply) => ready(reply));
    r.post(
      `${prefix}/infer`,
      { schema: { params, body: InferRequestSchema }, config: { protocol: 'v2' }, preValidation },
      async (req, reply) => {
        const body = req.body;
        const params = req.params as ModelParams;
        const inputs = body.inputs as InferInput[];
        const requested = body.outputs?.map((o) => o.name);
        const tail = binaryTail(body);
        const binary = binaryOutputs(body);
        req.observed = true;
        return plane.infer({
          protocol: 'v2',
          requestId: req.id,
          model: params.name,
          version: params.version,
          inferenceId: body.id,
          callerTimeout: req.headers[TIMEOUT_HEADER],
          authorization: callerAuthorization(req.headers.authorization, req.headers[FORWARDED_AUTH_HEADER]),
          opts: {
            ...(requested ? { outputs: requested } : {}),
            ...(body.parameters ? { parameters: body.parameters } : {}),
          },
          decode: () => inputsToRows(inputs, tail),
          recordInput: () => inputsForRecord(inputs, tail),
          encode: (predictions) => {
            const outputs = rowsToOutputs(predictions, model.outputs, requested);
            const response = {
              model_name: model.name,
              ...(model.version ? { model_version: model.version } : {}),
              id: body.id ?? req.id,
              outputs: outputs as (InferOutput | Omit<InferOutput, 'data'>)[],
            };
            if (!binary) return { response: response as unknown, recorded: outputs };
            // The binary extension: the outputs asked for as binary carry their size; their bytes follow the JSON.
            const parts: Uint8Array[] = [];
            response.outputs = outputs.map((o) => {
              if (!binary(o.name)) return o;
              const bytes = encodeBinary(o.name, o.datatype, o.data);
              parts.push(bytes);
              const { data: _data, ...rest } = o;
              return { ...rest, parameters: { binary_data_size: bytes.byteLength } };
            });
            const json = Buffer.from(JSON.stringify(response));
            reply.header(HEADER_LENGTH, json.length).type('application/octet-stream');
            return { response: Buffer.concat([json, ...parts]) as unknown, recorded: outputs };
          },
        });
      },
    );
    r.post(
      `${prefix}/feedback`,
      { schema: { params, body: FeedbackSchema }, config: { protocol: 'v2', feedback: true }, preValidation },
      (req) =>
        plane.feedback(
          'v2',
          req.id,
          req.body as FeedbackBody,
          req.headers[TIMEOUT_HEADER],
          callerAuthorization(req.headers.authorization, req.headers[FORWARDED_AUTH_HEADER]),
        ),
    );
  }
}
