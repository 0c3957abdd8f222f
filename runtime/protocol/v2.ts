// Open Inference Protocol (KServe v2) REST endpoints: a thin adapter onto the data plane.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { DataPlane } from '../dataplane.ts';
import { SERVER_VERSION } from '../version.ts';
import { type FeedbackBody, FeedbackSchema } from './feedback.ts';
import { type InferInput, inputsToRows, rowsToOutputs } from './tensors.ts';

export const SERVER_NAME = 'modelship';

const Parameters = Type.Record(Type.String(), Type.Unknown());

export const InferRequestSchema = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 256 })),
  parameters: Type.Optional(Parameters),
  inputs: Type.Array(
    Type.Object({
      name: Type.String({ minLength: 1, maxLength: 256 }),
      shape: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 32 }),
      datatype: Type.String({ maxLength: 16 }),
      data: Type.Array(Type.Unknown()),
      parameters: Type.Optional(Parameters),
    }),
    { minItems: 1, maxItems: 1024 },
  ),
  outputs: Type.Optional(
    Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), parameters: Type.Optional(Parameters) }), { maxItems: 1024 }),
  ),
});

const NameParams = Type.Object({ name: Type.String() });
const VersionParams = Type.Object({ name: Type.String(), version: Type.String() });
type ModelParams = { name: string; version?: string };

export function registerV2(app: FastifyInstance, plane: DataPlane): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = plane;

  r.get('/v2', () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] as string[] }));

  const metadata = () => ({
    name: model.name,
    ...(model.version ? { versions: [model.version] } : {}),
    platform: `modelship-${model.engine?.format ?? model.manifest.format ?? 'js'}`,
    inputs: model.inputs,
    outputs: model.outputs,
    ...(model.manifest.description ? { parameters: { description: model.manifest.description } } : {}),
  });
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
    r.post(`${prefix}/infer`, { schema: { params, body: InferRequestSchema }, config: { protocol: 'v2' }, preValidation }, async (req) => {
      const body = req.body;
      const inf = plane.begin(req.id, 'v2', body.inputs, body.id);
      req.inference = inf;
      const requested = body.outputs?.map((o) => o.name);
      const rows = inputsToRows(body.inputs as InferInput[]);
      const outputs = rowsToOutputs(
        await plane.predict(inf, rows, requested ? { outputs: requested } : undefined),
        model.outputs,
        requested,
      );
      inf.output = outputs;
      return {
        model_name: model.name,
        ...(model.version ? { model_version: model.version } : {}),
        id: body.id ?? req.id,
        outputs,
      };
    });
    r.post(`${prefix}/feedback`, { schema: { params, body: FeedbackSchema }, config: { protocol: 'v2' }, preValidation }, (req) =>
      plane.feedback('v2', req.id, req.body as FeedbackBody),
    );
  }
}
