// KServe v1 REST endpoints: decode → DataPlane.infer → encode. Each instance is one plugin input: an object
// instance is passed as it is; any other instance (an array, a number) is bound to the model's single declared
// input, or to "input" when the model declares none. Each prediction is the plugin's output object for its
// instance, or the value of the model's primary output where it has one (a Hopsworks bundle's predictions, a
// scikit-learn estimator's predict). Verbs: predict, feedback, and the model's other prediction methods
// (Hopsworks' classify and regress).
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { callerAuthorization } from '../auth/gate.ts';
import { FORWARDED_AUTH_HEADER, TIMEOUT_HEADER } from '../contract.ts';
import type { DataPlane } from '../dataplane.ts';
import type { Outputs } from '../engines/outputs.ts';
import { msError } from '../errors.ts';
import { describeSchemaErrors } from '../schema-errors.ts';
import { type FeedbackBody, FeedbackSchema } from './feedback.ts';
import { outputsToJson, valueToJson } from './tensors.ts';

export const V1PredictSchema = Type.Object({
  instances: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 65536 }),
});

const NameParams = Type.Object({ name: Type.String() });
const TargetParams = Type.Object({ target: Type.String() });
/** Verbs some models add beside predict; whether this model has them is known once it is loaded. */
const MODEL_VERBS = new Set(['classify', 'regress']);

export function registerV1(app: FastifyInstance, plane: DataPlane): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = plane;

  r.get('/v1/models', () => ({ models: [model.name] }));
  r.get('/v1/models/:name', { schema: { params: NameParams } }, (req, reply) => {
    plane.checkModel(req.params.name);
    if (!model.ready) reply.code(503);
    return { name: model.name, ready: model.ready };
  });

  const prediction = (o: Outputs) => {
    const key = model.engine?.metadata.primaryOutput;
    return key !== undefined && key in o ? valueToJson(key, o[key] as Outputs[string]) : outputsToJson(o);
  };

  // `/v1/models/{name}:predict` (and the other verbs): one path segment holding the name and the verb, so
  // one route; the verb picks the body schema, checked here instead of by the route.
  const predictBody = Compile(V1PredictSchema);
  const feedbackBody = Compile(FeedbackSchema);
  r.post(
    '/v1/models/:target',
    {
      schema: { params: TargetParams },
      config: { protocol: 'v1' },
      preValidation: async (req) => {
        const { target } = req.params as { target: string };
        const at = target.lastIndexOf(':');
        const verb = target.slice(at + 1);
        if (at < 0 || (verb !== 'predict' && verb !== 'feedback' && !MODEL_VERBS.has(verb))) {
          throw msError('MS_ERR_HTTP_NOT_FOUND', { method: req.method, url: req.url });
        }
        plane.checkModel(target.slice(0, at));
        if (MODEL_VERBS.has(verb) && model.engine && !model.engine.metadata.methods.includes(verb)) {
          throw msError('MS_ERR_HTTP_NOT_FOUND', { method: req.method, url: req.url });
        }
        const validator = verb === 'feedback' ? feedbackBody : predictBody;
        if (!validator.Check(req.body)) {
          const errors = [...validator.Errors(req.body)].map((e) => ({ ...e, instancePath: `/body${e.instancePath}` }));
          throw msError('MS_ERR_REQUEST_INVALID', { detail: describeSchemaErrors(errors) });
        }
      },
    },
    async (req) => {
      const { target } = req.params as { target: string };
      const at = target.lastIndexOf(':');
      const verb = target.slice(at + 1);
      const authorization = callerAuthorization(req.headers.authorization, req.headers[FORWARDED_AUTH_HEADER]);
      if (verb === 'feedback') return plane.feedback('v1', req.id, req.body as FeedbackBody, req.headers[TIMEOUT_HEADER], authorization);
      const instances = (req.body as Static<typeof V1PredictSchema>).instances;
      req.observed = true;
      return plane.infer({
        protocol: 'v1',
        requestId: req.id,
        model: target.slice(0, at),
        callerTimeout: req.headers[TIMEOUT_HEADER],
        authorization,
        opts: verb === 'predict' ? undefined : { method: verb },
        decode: () => {
          const single = model.inputs.length === 1 ? (model.inputs[0]?.name ?? 'input') : 'input';
          return instances.map((inst) =>
            inst !== null && typeof inst === 'object' && !Array.isArray(inst) ? (inst as Record<string, unknown>) : { [single]: inst },
          );
        },
        recordInput: () => instances,
        encode: (outputs) => {
          const predictions = outputs.map(prediction);
          return { response: { predictions }, recorded: predictions };
        },
      });
    },
  );
}
