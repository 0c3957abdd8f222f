// The batch protocol: how a BatchPrediction's driver asks the model sidecar of its pod (over a Unix socket, never
// a port) for a fixed-size batch of rows. Rows in, one result per row out: decode → DataPlane.infer → encode, so a
// batch gets the same input checks, engine, output checks, deadlines and metrics as a request. A row the model
// refuses (a 4xx: InvalidInput, ValueError, a bad input) does not sink its batch: the batch is asked again row by
// row and only that row carries the error. Anything else (a timeout, a worker that died) fails the whole batch
// with its status, for the driver to retry.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { readiness } from '../app.ts';
import type { DataPlane } from '../dataplane.ts';
import { isModelshipError } from '../errors.ts';
import { outputsToJson } from './tensors.ts';

export const BatchScoreSchema = Type.Object({
  rows: Type.Array(Type.Record(Type.String(), Type.Unknown()), { minItems: 1, maxItems: 65536 }),
});

export type BatchResult = { outputs: Record<string, unknown> } | { error: string; code: string };

/** Batches worth keeping in flight for an engine of this capacity (calls it runs at once; undefined: in-process). */
export function batchConcurrency(capacity: number | undefined): number {
  return Math.min(16, Math.max(2, capacity ?? 2));
}

export function registerBatch(app: FastifyInstance, plane: DataPlane): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { model } = plane;

  r.get('/ready', (_req, reply) => {
    const state = readiness(model);
    if (!state.ready) reply.code(503);
    return state;
  });
  r.get('/metadata', () => ({
    name: model.name,
    inputs: model.inputs,
    outputs: model.outputs,
    capacity: batchConcurrency(model.engine?.metadata.capacity),
  }));

  const score = (requestId: string, rows: Record<string, unknown>[]) =>
    plane.infer({
      protocol: 'batch',
      requestId,
      model: model.name,
      callerTimeout: undefined,
      authorization: undefined,
      decode: () => rows,
      recordInput: () => rows,
      encode: (outputs) => {
        const results = outputs.map((o) => ({ outputs: outputsToJson(o) }));
        return { response: results as BatchResult[], recorded: results };
      },
    });

  r.post('/score', { schema: { body: BatchScoreSchema }, config: { protocol: 'batch' } }, async (req) => {
    const rows = (req.body as Static<typeof BatchScoreSchema>).rows;
    try {
      return { results: await score(req.id, rows) };
    } catch (err) {
      if (!refused(err) || rows.length === 1) {
        if (rows.length === 1 && refused(err)) return { results: [asError(err)] };
        throw err;
      }
    }
    // Some row was refused: ask again one row at a time (in order, a few at once), so only the bad rows fail.
    const results: BatchResult[] = new Array(rows.length);
    let next = 0;
    const lane = async () => {
      while (next < rows.length) {
        const i = next++;
        try {
          results[i] = (await score(`${req.id}.${i}`, [rows[i] as Record<string, unknown>]))[0] as BatchResult;
        } catch (err) {
          if (!refused(err)) throw err;
          results[i] = asError(err);
        }
      }
    };
    await Promise.all(Array.from({ length: batchConcurrency(model.engine?.metadata.capacity) }, lane));
    return { results };
  });
}

/** The model refused the input (the caller's mistake), as opposed to failing to answer. */
function refused(err: unknown): boolean {
  return isModelshipError(err) && err.statusCode >= 400 && err.statusCode < 500;
}

function asError(err: unknown): BatchResult {
  return isModelshipError(err) ? { error: err.message, code: err.code } : { error: String(err), code: 'MS_ERR_SERVER_INTERNAL' };
}
