// Feedback: ground truth for an earlier inference, joined to it by request id. `POST
// /v2/models/{name}/feedback` and `POST /v1/models/{name}:feedback` with `{"id": "<request id>", ...}`.
// The feedback record is written first (so a plugin failure loses no ground truth), then the plugin's
// optional feedback() runs under the request timeout; the metrics and events it returns are applied.
import Type, { type Static } from 'typebox';
import { msError } from '../errors.ts';
import { type InferDeps, withDeadline } from './infer.ts';

export const FeedbackSchema = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: '^[A-Za-z0-9._:@/+=-]+$',
      description: 'The x-request-id of the inference this feedback is about',
    }),
  },
  { additionalProperties: true },
);

export type FeedbackBody = Static<typeof FeedbackSchema> & Record<string, unknown>;

export interface FeedbackResponse {
  id: string;
  model: string;
  /** Whether a feedback record was queued for the inference-logging topic. */
  logged: boolean;
  /** What the plugin's feedback() returned, without `$metrics` / `$events`. */
  result?: unknown;
}

export async function feedback(deps: InferDeps, protocol: 'v2' | 'v1', requestId: string, body: FeedbackBody): Promise<FeedbackResponse> {
  const { model, recorder } = deps;
  const engine = model.requireEngine();
  if (!engine.hasFeedback && recorder.topic === undefined) throw msError('MS_ERR_FEEDBACK_UNSUPPORTED', { name: model.name });
  const { id, ...truth } = body;
  const logged = recorder.feedback(protocol, id, requestId, truth);
  const response: FeedbackResponse = { id, model: model.name, logged };
  if (engine.hasFeedback) {
    const r = await withDeadline(deps, requestId, (e, ctx) => e.feedback(body, ctx));
    recorder.signals(r.signals, id);
    if (r.value !== undefined) response.result = r.value;
  }
  return response;
}
