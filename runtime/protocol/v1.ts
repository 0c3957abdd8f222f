// KServe v1 REST endpoints. Each instance is one plugin input: an object instance is passed as it is; any
// other instance (an array, a number) is bound to the model's single declared input, or to "input" when the
// model declares none. Each prediction is the plugin's output object for its instance.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { msError } from '../errors.ts';
import { describeSchemaErrors } from '../schema-errors.ts';
import { type FeedbackBody, FeedbackSchema, feedback } from './feedback.ts';
import { type InferDeps, predict, recorded } from './infer.ts';
import { outputsToJson } from './tensors.ts';

export const V1PredictSchema = Type.Object({
  instances: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 65536 }),
});

const NameParams = Type.Object({ name: Type.String() });
const TargetParams = Type.Object({ target: Type.String() });

export function registerV1(app: FastifyInstance, deps: InferDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = deps;
  const checkModel = (name: string) => {
    if (name !== model.name) throw msError('MS_ERR_MODEL_NOT_FOUND', { name, served: model.name });
  };

  r.get('/v1/models/:name', { schema: { params: NameParams } }, (req, reply) => {
    checkModel(req.params.name);
    if (!model.ready) reply.code(503);
    return { name: model.name, ready: model.ready };
  });

  // `/v1/models/{name}:predict` and `:feedback`: one path segment holding the name and the verb, so one
  // route; the verb picks the body schema, checked here instead of by the route.
  const bodies = { predict: Compile(V1PredictSchema), feedback: Compile(FeedbackSchema) };
  r.post(
    '/v1/models/:target',
    {
      schema: { params: TargetParams },
      config: { protocol: 'v1' },
      ...(deps.onResponse ? { onResponse: deps.onResponse } : {}),
      preValidation: async (req) => {
        const { target } = req.params as { target: string };
        const at = target.lastIndexOf(':');
        const verb = target.slice(at + 1);
        if (at < 0 || (verb !== 'predict' && verb !== 'feedback')) {
          throw msError('MS_ERR_HTTP_NOT_FOUND', { method: req.method, url: req.url });
        }
        checkModel(target.slice(0, at));
        const validator = bodies[verb];
        if (!validator.Check(req.body)) {
          const errors = [...validator.Errors(req.body)].map((e) => ({ ...e, instancePath: `/body${e.instancePath}` }));
          throw msError('MS_ERR_REQUEST_INVALID', { detail: describeSchemaErrors(errors) });
        }
      },
    },
    async (req, reply) => {
      const { target } = req.params as { target: string };
      if (target.endsWith(':feedback')) return feedback(deps, 'v1', req.id, req.body as FeedbackBody);
      const instances = (req.body as Static<typeof V1PredictSchema>).instances;
      return recorded(deps, reply, { requestId: req.id, protocol: 'v1', input: instances }, async () => {
        const single = model.inputs.length === 1 ? (model.inputs[0]?.name ?? 'input') : 'input';
        const rows = instances.map((inst) =>
          inst !== null && typeof inst === 'object' && !Array.isArray(inst) ? (inst as Record<string, unknown>) : { [single]: inst },
        );
        const predictions = (await predict(deps, req.id, rows)).map(outputsToJson);
        return { value: { predictions }, output: predictions };
      });
    },
  );
}
