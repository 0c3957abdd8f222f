// Request bodies as OIP clients send them: JSON with or without a Content-Type (tritonclient sends none),
// and the binary tensor extension: `Inference-Header-Content-Length: N`, N bytes of JSON, then the raw
// tensor bytes. The JSON is what the routes' schemas validate; the bytes after it wait in a WeakMap.
import type { FastifyInstance } from 'fastify';
import { msError } from '../errors.ts';

export const HEADER_LENGTH = 'inference-header-content-length';
const tails = new WeakMap<object, Uint8Array>();

/** The binary tensor bytes of a body parsed by the binary extension, if it had any. */
export function binaryTail(body: unknown): Uint8Array | undefined {
  return body !== null && typeof body === 'object' ? tails.get(body) : undefined;
}

export function registerBodyParsers(app: FastifyInstance): void {
  // A GET may carry a JSON body too: Ray Serve's clients call a deployment's route with
  // `requests.get(url, json=...)`, and a custom route reads it. A GET without one is not parsed at all.
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true });
  // JSON only otherwise: a text/plain body would reach the schema as a string instead of a 415.
  app.removeContentTypeParser('text/plain');
  // fastify's own JSON parsing (prototype-poisoning keys refused), on our bytes.
  const defaultJson = app.getDefaultJsonParser('error', 'ignore');
  const parseJson = (bytes: Buffer): unknown => {
    if (bytes.length === 0) throw msError('MS_ERR_REQUEST_BAD_JSON', { detail: 'the body is empty' });
    let result: unknown;
    let failure: Error | undefined;
    defaultJson(undefined as never, bytes.toString('utf8'), (err, value) => {
      failure = err ?? undefined;
      result = value;
    });
    if (failure) throw msError('MS_ERR_REQUEST_BAD_JSON', { detail: failure.message });
    return result;
  };
  const parse = (headers: Record<string, string | string[] | undefined>, body: Buffer): unknown => {
    const raw = headers[HEADER_LENGTH];
    if (raw === undefined) return parseJson(body);
    const n = Number(raw);
    if (typeof raw !== 'string' || !Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw msError('MS_ERR_REQUEST_INVALID', {
        detail: `${HEADER_LENGTH} is ${JSON.stringify(raw)}; it must be the JSON header's length, at most the body's ${body.length} bytes`,
      });
    }
    const json = parseJson(body.subarray(0, n));
    if (json !== null && typeof json === 'object' && n < body.length) tails.set(json, body.subarray(n));
    return json;
  };
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parse(req.headers, body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // JSON parsed by us too, so a binary-extension request that says application/json still works.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      done(null, parse(req.headers, body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // No Content-Type at all: JSON (or the binary extension). Any other named type stays a 415.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const type = req.headers['content-type'];
    if (type !== undefined && type !== '') {
      done(msError('MS_ERR_REQUEST_CONTENT_TYPE', { type: JSON.stringify(type) }), undefined);
      return;
    }
    try {
      done(null, parse(req.headers, body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}
