// What the API server said when a request failed. client-node's ApiException carries the HTTP code and the
// raw body (a metav1.Status as JSON); its `message` repeats the whole body and the response headers, which
// is no use in a log line or a condition message.

export interface ApiError {
  /** The HTTP status code, when the request reached the API server. */
  code?: number;
  /** The Status message, or the error's own message when there is no Status. */
  message: string;
  /** The reasons of the Status details' causes (e.g. NamespaceTerminating, FieldValueInvalid). */
  causes: string[];
}

/** Reads a failed request's error. Pure. */
export function apiError(err: unknown): ApiError {
  const e = (err ?? {}) as { code?: unknown; body?: unknown; message?: unknown };
  const code = typeof e.code === 'number' ? e.code : undefined;
  let status: { message?: unknown; details?: { causes?: { reason?: unknown }[] } } | undefined;
  if (typeof e.body === 'string') {
    try {
      status = JSON.parse(e.body) as typeof status;
    } catch {
      // not JSON (a proxy's page, a plain-text 404)
    }
  } else if (e.body && typeof e.body === 'object') {
    status = e.body as typeof status;
  }
  const raw = typeof e.message === 'string' ? e.message : String(err);
  // client-node's own text: "[what it was doing: ]HTTP-Code: 404\nMessage: …\nBody: …\nHeaders: {…}".
  const dump = /^([\s\S]*?)HTTP-Code: \d+\nMessage: ([^\n]*)\nBody: /.exec(raw);
  const statusMessage = typeof status?.message === 'string' && status.message ? status.message : undefined;
  const bodyText = typeof e.body === 'string' && e.body.trim() ? e.body.trim() : undefined;
  const message = dump ? `${dump[1]}${statusMessage ?? bodyText ?? dump[2]}` : (statusMessage ?? raw);
  const causes = (status?.details?.causes ?? []).map((c) => c?.reason).filter((r): r is string => typeof r === 'string');
  return { ...(code === undefined ? {} : { code }), message, causes };
}

/**
 * The namespace is being deleted: the API server refuses new objects in it (403, cause NamespaceTerminating).
 * Everything in it is about to go, so there is nothing to retry and nothing to report.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  const e = apiError(err);
  return e.code === 403 && e.causes.includes('NamespaceTerminating');
}

/**
 * What only a person can fix (a stranger's object under our name, a setting the operator lacks): the reconcile
 * reports it in the status and throws it, and the worker does not retry it (the next change to the object does).
 */
export class TerminalError extends Error {
  override name = 'TerminalError';
  /** The status reason it is reported under. */
  readonly reason: string;

  constructor(message: string, reason = 'Conflict') {
    super(message);
    this.reason = reason;
  }
}
