// The records the runtime writes to Kafka: one per sampled inference, one per feedback, one per plugin
// event. Versioned JSON; the TypeBox schema below is the source of docs/inference-record.schema.json
// (`npm run gen`, drift-tested). Pure.
import Type, { type Static } from 'typebox';
import type { InferenceLogMode } from '../contract.ts';

/** The protocol an inference came by, as its record names it. */
export type Protocol = 'v2' | 'v1' | 'grpc' | 'batch';

export const SCHEMA_VERSION = 1;

const Common = {
  schemaVersion: Type.Literal(SCHEMA_VERSION, { description: 'Version of this record schema' }),
  requestId: Type.String({
    minLength: 1,
    description: 'The x-request-id of the request (also the Kafka record key); feedback and events carry the id they refer to',
  }),
  model: Type.String({ description: 'The model name (the ModelServing name)' }),
  modelVersion: Type.Optional(Type.String({ description: 'The model version, when the bundle declares one' })),
  namespace: Type.Optional(Type.String({ description: 'The Kubernetes namespace of the ModelServing' })),
  bundleSha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the served bundle archive' })),
  timestamp: Type.String({ format: 'date-time', description: 'When the record was made (RFC 3339, UTC)' }),
};

const ErrorInfo = Type.Object(
  {
    code: Type.String({ description: 'The runtime error code, e.g. MS_ERR_PREDICT_FAILED' }),
    message: Type.String(),
    status: Type.Integer({ description: 'The HTTP status the client received' }),
  },
  { additionalProperties: false },
);

export const InferenceRecord = Type.Object(
  {
    ...Common,
    type: Type.Literal('inference'),
    protocol: Type.Union([Type.Literal('v2'), Type.Literal('v1'), Type.Literal('grpc'), Type.Literal('batch')], {
      description:
        'v2: Open Inference Protocol over REST; v1: KServe v1; grpc: Open Inference Protocol over gRPC; batch: a BatchPrediction shard',
    }),
    inferenceId: Type.Optional(Type.String({ description: 'The `id` of an OIP v2 request, when the client set one' })),
    latencyMs: Type.Number({ minimum: 0, description: 'From request received to response ready, in milliseconds' }),
    input: Type.Optional(Type.Unknown({ description: 'mode all|inputs: the request as received (v2: its inputs; v1: its instances)' })),
    output: Type.Optional(
      Type.Unknown({ description: 'mode all|predictions: the response (v2: its outputs; v1: its predictions); absent on error' }),
    ),
    error: Type.Optional(ErrorInfo),
  },
  { additionalProperties: false, description: 'One sampled inference request' },
);

export const FeedbackRecord = Type.Object(
  {
    ...Common,
    type: Type.Literal('feedback'),
    protocol: Type.Union([Type.Literal('v2'), Type.Literal('v1')]),
    feedbackRequestId: Type.String({ description: 'The x-request-id of the feedback request itself' }),
    feedback: Type.Record(Type.String(), Type.Unknown(), { description: 'The feedback body without its id (the ground truth)' }),
  },
  { additionalProperties: false, description: 'Ground truth for an earlier inference; requestId joins it to that inference' },
);

export const EventRecord = Type.Object(
  {
    ...Common,
    type: Type.Literal('event'),
    value: Type.Unknown({ description: "What the plugin returned as the event's value" }),
  },
  { additionalProperties: false, description: 'An event the plugin returned, on a topic the ModelServing allows' },
);

export const ModelshipRecord = Type.Union([InferenceRecord, FeedbackRecord, EventRecord], {
  $id: 'https://modelship.dev/schemas/inference-record.v1.json',
  title: 'modelship Kafka record',
  description:
    'The value of every record modelship produces to Kafka (JSON, UTF-8). `type` tells inference, feedback and event records apart; the record key is `requestId`.',
});

export type InferenceRecord = Static<typeof InferenceRecord>;
export type FeedbackRecord = Static<typeof FeedbackRecord>;
export type EventRecord = Static<typeof EventRecord>;

/** What every record of one runtime shares. */
export interface RecordSource {
  model: string;
  modelVersion: string | undefined;
  namespace: string | undefined;
  bundleSha256: string | undefined;
}

let lastMs = 0;
let lastIso = '';
/** toISOString, made once per millisecond: under load many records share one. */
function isoNow(now: Date | undefined): string {
  if (now) return now.toISOString();
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

// Built field by field (no spreads): this runs once per logged request.
function common<T extends string>(src: RecordSource, requestId: string, type: T, now: Date | undefined) {
  const r: {
    schemaVersion: typeof SCHEMA_VERSION;
    type: T;
    requestId: string;
    model: string;
    modelVersion?: string;
    namespace?: string;
    bundleSha256?: string;
    timestamp: string;
  } = { schemaVersion: SCHEMA_VERSION, type, requestId, model: src.model, timestamp: '' };
  if (src.modelVersion) r.modelVersion = src.modelVersion;
  if (src.namespace) r.namespace = src.namespace;
  if (src.bundleSha256) r.bundleSha256 = src.bundleSha256;
  r.timestamp = isoNow(now);
  return r;
}

export interface InferenceFacts {
  requestId: string;
  protocol: Protocol;
  inferenceId?: string | undefined;
  latencyMs: number;
  input: unknown;
  output?: unknown;
  error?: { code: string; message: string; status: number } | undefined;
}

export function inferenceRecord(src: RecordSource, mode: InferenceLogMode, f: InferenceFacts, now?: Date): InferenceRecord {
  const r: InferenceRecord = Object.assign(common(src, f.requestId, 'inference' as const, now), {
    protocol: f.protocol,
    latencyMs: Math.round(f.latencyMs * 1000) / 1000,
  });
  if (f.inferenceId !== undefined) r.inferenceId = f.inferenceId;
  if (mode !== 'predictions') r.input = f.input;
  if (mode !== 'inputs' && f.output !== undefined) r.output = f.output;
  if (f.error) r.error = f.error;
  return r;
}

export function feedbackRecord(
  src: RecordSource,
  protocol: 'v2' | 'v1',
  requestId: string,
  feedbackRequestId: string,
  feedback: Record<string, unknown>,
  now?: Date,
): FeedbackRecord {
  return Object.assign(common(src, requestId, 'feedback' as const, now), { protocol, feedbackRequestId, feedback });
}

export function eventRecord(src: RecordSource, requestId: string, value: unknown, now?: Date): EventRecord {
  return Object.assign(common(src, requestId, 'event' as const, now), { value });
}

/** docs/inference-record.schema.json: the published JSON Schema of record values. */
export function recordJsonSchema(): string {
  return `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...ModelshipRecord }, null, 2)}\n`;
}
