// Feedback: ground truth for an earlier inference, joined to it by request id. `POST
// /v2/models/{name}/feedback` and `POST /v1/models/{name}:feedback` with `{"id": "<request id>", ...}`;
// handled by DataPlane.feedback.
import Type, { type Static } from 'typebox';
import { REQUEST_ID_PATTERN } from '../contract.ts';

export const FeedbackSchema = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: REQUEST_ID_PATTERN,
      description: 'The x-request-id of the inference this feedback is about',
    }),
  },
  { additionalProperties: true },
);

export type FeedbackBody = Static<typeof FeedbackSchema> & Record<string, unknown>;
