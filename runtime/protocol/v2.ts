// Open Inference Protocol (KServe v2) REST endpoints.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import Type, { type Static } from 'typebox';
import { msError } from '../errors.ts';
import { type InferDeps, predict, recorded } from './infer.ts';
import { type FeedbackBody, FeedbackSchema, feedback } from './feedback.ts';
import { type InferInput, inputsToRows, rowsToOutputs } from './tensors.ts';

export const SERVER_NAME = 'modelship';
export const SERVER_VERSION = '0.1.0';

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

export function registerV2(app: FastifyInstance, deps: InferDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = deps;

  const checkModel = (name: string, version?: string) => {
    if (name !== model.name) throw msError('MS_ERR_MODEL_NOT_FOUND', { name, served: model.name });
    if (version !== undefined && version !== model.version) {
      throw msError('MS_ERR_MODEL_VERSION_NOT_FOUND', { name, version, served: model.version ?? '(none)' });
    }
  };

  r.get('/v2', () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] as string[] }));

  const metadata = () => ({
    name: model.name,
    ...(model.version ? { versions: [model.version] } : {}),
    platform: `modelship-${model.engine?.format ?? model.manifest.format ?? 'js'}`,
    inputs: model.inputs,
    outputs: model.outputs,
    ...(model.manifest.description ? { parameters: { description: model.manifest.description } } : {}),
  });
  r.get('/v2/models/:name', { schema: { params: NameParams } }, (req) => {
    checkModel(req.params.name);
    return metadata();
  });
  r.get('/v2/models/:name/versions/:version', { schema: { params: VersionParams } }, (req) => {
    checkModel(req.params.name, req.params.version);
    return metadata();
  });

  const ready = (reply: { code(n: number): unknown }) => {
    if (!model.ready) reply.code(503);
    return { name: model.name, ready: model.ready };
  };
  r.get('/v2/models/:name/ready', { schema: { params: NameParams } }, (req, reply) => {
    checkModel(req.params.name);
    return ready(reply);
  });
  r.get('/v2/models/:name/versions/:version/ready', { schema: { params: VersionParams } }, (req, reply) => {
    checkModel(req.params.name, req.params.version);
    return ready(reply);
  });

  const infer = (id: string, body: Static<typeof InferRequestSchema>, reply: FastifyReply) =>
    recorded(deps, reply, { requestId: id, protocol: 'v2', inferenceId: body.id, input: body.inputs }, async () => {
      const rows = inputsToRows(body.inputs as InferInput[]);
      const outputs = rowsToOutputs(
        await predict(deps, id, rows),
        model.outputs,
        body.outputs?.map((o) => o.name),
      );
      const value = {
        model_name: model.name,
        ...(model.version ? { model_version: model.version } : {}),
        id: body.id ?? id,
        outputs,
      };
      return { value, output: outputs };
    });
  const config = { protocol: 'v2' };
  const onResponse = deps.onResponse ?? ((_q: unknown, _r: unknown, done: () => void) => done());
  // The model is checked before the body, so a request to the wrong model is a 404 whatever its body.
  const preValidation = (req: { params: unknown }, _reply: unknown, done: (err?: Error) => void) => {
    const p = req.params as { name: string; version?: string };
    try {
      checkModel(p.name, p.version);
      done();
    } catch (err) {
      done(err as Error);
    }
  };
  r.post(
    '/v2/models/:name/infer',
    { schema: { params: NameParams, body: InferRequestSchema }, config, preValidation, onResponse },
    (req, reply) => infer(req.id, req.body, reply),
  );
  r.post(
    '/v2/models/:name/versions/:version/infer',
    { schema: { params: VersionParams, body: InferRequestSchema }, config, preValidation, onResponse },
    (req, reply) => infer(req.id, req.body, reply),
  );
  r.post('/v2/models/:name/feedback', { schema: { params: NameParams, body: FeedbackSchema }, config, preValidation, onResponse }, (req) =>
    feedback(deps, 'v2', req.id, req.body as FeedbackBody),
  );
  r.post(
    '/v2/models/:name/versions/:version/feedback',
    { schema: { params: VersionParams, body: FeedbackSchema }, config, preValidation, onResponse },
    (req) => feedback(deps, 'v2', req.id, req.body as FeedbackBody),
  );
}
