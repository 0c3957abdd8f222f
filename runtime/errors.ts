// Every error the runtime reports is made here, from one table: a stable code, an HTTP status and a message
// template. Codes are never reused or renamed; each one is documented in docs/errors.md (a test checks).

interface ErrorSpec {
  status: number;
  message: string;
}

export const ERRORS = {
  // configuration
  MS_ERR_CONFIG_INVALID: { status: 500, message: 'invalid configuration: {detail}' },
  MS_ERR_LISTEN_FAILED: { status: 500, message: 'cannot listen for {protocol} on {address}: {detail}' },
  // fetching a bundle
  MS_ERR_BUNDLE_URI_INVALID: { status: 500, message: 'bundle URI {uri} is not supported: {detail}' },
  MS_ERR_BUNDLE_NOT_FOUND: { status: 500, message: 'bundle {uri} not found{detail}' },
  MS_ERR_BUNDLE_ACCESS_DENIED: { status: 500, message: 'access to bundle {uri} denied{detail}' },
  MS_ERR_BUNDLE_FETCH_TIMEOUT: { status: 500, message: 'fetching bundle {uri} timed out after {seconds} s' },
  MS_ERR_BUNDLE_FETCH_FAILED: { status: 500, message: 'fetching bundle {uri} failed after {attempts} attempts: {detail}' },
  MS_ERR_BUNDLE_DOWNLOAD_TOO_LARGE: { status: 500, message: 'bundle {uri} is larger than the limit of {limit} bytes' },
  MS_ERR_BUNDLE_SHA256_MISMATCH: { status: 500, message: 'bundle {uri} sha256 mismatch: expected {expected}, got {actual}' },
  // unpacking a bundle
  MS_ERR_BUNDLE_CORRUPT: { status: 500, message: 'bundle is not a valid zip archive: {detail}' },
  MS_ERR_BUNDLE_PATH_ESCAPE: { status: 500, message: 'bundle entry "{entry}" escapes the bundle directory' },
  MS_ERR_BUNDLE_ABSOLUTE_PATH: { status: 500, message: 'bundle entry "{entry}" has an absolute path' },
  MS_ERR_BUNDLE_ENTRY_NAME: { status: 500, message: 'bundle entry name {entry} is not allowed: {detail}' },
  MS_ERR_BUNDLE_SYMLINK: { status: 500, message: 'bundle entry "{entry}" is a symbolic link; links are not allowed' },
  MS_ERR_BUNDLE_SPECIAL_FILE: { status: 500, message: 'bundle entry "{entry}" is not a regular file or directory' },
  MS_ERR_BUNDLE_TOO_MANY_ENTRIES: { status: 500, message: 'bundle has {count} entries; the limit is {limit}' },
  MS_ERR_BUNDLE_TOO_LARGE: { status: 500, message: 'bundle unpacks to {size} bytes; the limit is {limit}' },
  MS_ERR_BUNDLE_COMPRESSION_RATIO: {
    status: 500,
    message: 'bundle entry "{entry}" expands {ratio}x; the limit is {limit}x (possible zip bomb)',
  },
  MS_ERR_BUNDLE_DUPLICATE_ENTRY: { status: 500, message: 'bundle entry "{entry}" appears more than once' },
  // manifest and format
  MS_ERR_MANIFEST_PARSE: { status: 500, message: 'modelship.yaml is not valid YAML: {detail}' },
  MS_ERR_MANIFEST_INVALID: { status: 500, message: 'modelship.yaml is invalid: {detail}' },
  MS_ERR_BUNDLE_FORMAT_UNKNOWN: {
    status: 500,
    message:
      'cannot tell the bundle format: no modelship.yaml format and none of predict.mjs, predict.js, model.onnx, predict.py, model.joblib, model.pkl, nor a single .py file',
  },
  // the plugin
  MS_ERR_PLUGIN_LOAD: { status: 500, message: 'loading plugin {entrypoint} failed: {detail}' },
  MS_ERR_PLUGIN_EXPORTS: { status: 500, message: 'plugin {entrypoint} {detail}' },
  MS_ERR_PLUGIN_INIT_FAILED: { status: 500, message: 'plugin init() failed: {detail}' },
  MS_ERR_PLUGIN_INIT_TIMEOUT: { status: 500, message: 'plugin init() did not finish within {seconds} s' },
  MS_ERR_PREDICT_FAILED: { status: 500, message: 'predict failed: {detail}' },
  MS_ERR_PREDICT_TIMEOUT: { status: 504, message: 'predict did not finish within {ms} ms' },
  // calls to other ModelServings (spec.dependencies)
  MS_ERR_DEPENDENCY_UNKNOWN: { status: 500, message: 'no dependency named "{name}"; spec.dependencies has {known}' },
  MS_ERR_DEPENDENCY_UNAVAILABLE: { status: 503, message: 'dependency {name} (ModelServing {ms}) is unavailable: {detail}' },
  MS_ERR_DEPENDENCY_TIMEOUT: { status: 504, message: 'dependency {name} (ModelServing {ms}) did not answer within {timeout} ms' },
  MS_ERR_DEPENDENCY_REJECTED: { status: 400, message: 'dependency {name} (ModelServing {ms}) rejected the input: {detail}' },
  MS_ERR_DEPENDENCY_FAILED: { status: 502, message: 'dependency {name} (ModelServing {ms}) failed: {detail}' },
  MS_ERR_OUTPUT_INVALID: { status: 500, message: 'plugin returned an invalid output: {detail}' },
  MS_ERR_FEEDBACK_FAILED: { status: 500, message: 'plugin feedback() failed: {detail}' },
  MS_ERR_FEEDBACK_UNSUPPORTED: {
    status: 501,
    message: 'model "{name}" cannot take feedback: its plugin has no feedback() and inference logging is off',
  },
  MS_ERR_ROUTE_FAILED: { status: 500, message: 'custom route {route} failed: {detail}' },
  MS_ERR_ROUTE_INVALID: { status: 500, message: 'plugin routes() registered an invalid route: {detail}' },
  MS_ERR_INPUT_INVALID: { status: 400, message: 'invalid input: {detail}' },
  // Python bundles
  MS_ERR_PYTHON_NOT_FOUND: { status: 500, message: 'no usable Python interpreter at {python}: {detail}' },
  MS_ERR_PYTHON_DEPS_FAILED: { status: 500, message: "installing the bundle's requirements.txt failed: {detail}" },
  MS_ERR_PYTHON_ENV_TAMPERED: { status: 500, message: 'an environment in the cache does not match its recorded content hash: {detail}' },
  MS_ERR_WORKER_CRASHED: { status: 500, message: 'Python worker {worker} died ({how}){detail}' },
  MS_ERR_WORKER_PROTOCOL: { status: 500, message: 'a Python worker sent a malformed message: {detail}' },
  // requests
  MS_ERR_REQUEST_INVALID: { status: 400, message: 'invalid request: {detail}' },
  MS_ERR_REQUEST_BAD_JSON: { status: 400, message: 'request body is not valid JSON: {detail}' },
  MS_ERR_REQUEST_TOO_LARGE: { status: 413, message: 'request body exceeds the limit of {limit} bytes' },
  MS_ERR_REQUEST_CONTENT_TYPE: { status: 415, message: 'unsupported content type {type}; send application/json' },
  MS_ERR_TENSOR_DATATYPE: { status: 400, message: 'input "{name}": unknown datatype {datatype}' },
  MS_ERR_TENSOR_SHAPE: { status: 400, message: 'input "{name}": {detail}' },
  MS_ERR_TENSOR_DATA: { status: 400, message: 'input "{name}": {detail}' },
  MS_ERR_TENSOR_BATCH: { status: 400, message: 'inputs disagree on the batch size (first dimension): {detail}' },
  MS_ERR_MODEL_NOT_FOUND: { status: 404, message: 'model "{name}" is not served here; this server serves "{served}"' },
  MS_ERR_MODEL_VERSION_NOT_FOUND: {
    status: 404,
    message: 'model "{name}" has no version "{version}"; this server serves version "{served}"',
  },
  MS_ERR_MODEL_NOT_READY: { status: 503, message: 'model "{name}" is not ready: {detail}' },
  MS_ERR_MODEL_OVERLOADED: { status: 503, message: 'model "{name}" is overloaded ({detail}); retry after {seconds} s' },
  MS_ERR_AUTH_UNAUTHENTICATED: { status: 401, message: 'authentication required: {detail}' },
  MS_ERR_AUTH_FORBIDDEN: { status: 403, message: 'forbidden: {detail}' },
  MS_ERR_AUTH_UNAVAILABLE: { status: 503, message: 'the caller cannot be checked now: {detail}' },
  MS_ERR_HTTP_NOT_FOUND: { status: 404, message: 'no route {method} {url}' },
  MS_ERR_HTTP_METHOD_NOT_ALLOWED: { status: 405, message: 'method {method} is not allowed on {url}' },
  MS_ERR_SERVER_INTERNAL: { status: 500, message: 'internal error: {detail}' },
  // Batch prediction (the plan and shard pods report these in their termination message; the status shows them)
  MS_ERR_BATCH_INPUT_NOT_FOUND: { status: 404, message: 'no input file matches {uri}{detail}' },
  MS_ERR_BATCH_INPUT_FORMAT: { status: 400, message: 'input file {file} cannot be read as {format}: {detail}' },
  MS_ERR_BATCH_COLUMN_MISSING: { status: 400, message: 'input file {file} has no column "{column}" (columns: {columns})' },
  MS_ERR_BATCH_TOO_MANY_ROW_ERRORS: {
    status: 400,
    message: 'shard {shard}: the model refused {count} rows, more than maxRowErrors ({limit}); first: {detail}',
  },
  MS_ERR_BATCH_STORAGE: { status: 503, message: 'object store {endpoint}: {operation} {key} failed: {detail}' },
  MS_ERR_BATCH_PLAN_CHANGED: {
    status: 409,
    message: 'the output {uri} holds a plan for other input ({detail}): choose another output, or delete that one',
  },
  MS_ERR_BATCH_SPEC_INVALID: { status: 400, message: 'invalid batch spec: {detail}' },
  // The CLI's deploy, status, logs, predict and delete (no HTTP: the status is the nearest meaning).
  MS_ERR_CLI_PROFILE_INVALID: { status: 400, message: 'the modelship profile {file} is invalid: {detail}' },
  MS_ERR_CLI_PROFILE_MISSING: {
    status: 400,
    message:
      'no modelship profile: {file} does not exist, $MODELSHIP_BUCKET is not set and no local environment is up ({envFile}): write the profile (storage: bucket, endpoint, accessKey, secretKey), or start the local environment (npm run env:up)',
  },
  MS_ERR_CLI_CLUSTER_UNREACHABLE: {
    status: 503,
    message:
      'cannot reach the cluster of kubeconfig context "{context}" at {server} ({detail}); check $KUBECONFIG or `kubectl config current-context`',
  },
  MS_ERR_CLI_STORAGE_UNREACHABLE: { status: 503, message: 'cannot reach the object store at {endpoint} ({detail}): {fix}' },
  MS_ERR_CLI_STORAGE_DENIED: { status: 403, message: 'the object store at {endpoint} refused the credentials ({detail}): {fix}' },
  MS_ERR_CLI_BUCKET_MISSING: { status: 404, message: 'bucket {bucket} does not exist at {endpoint}: {fix}' },
  MS_ERR_CLI_NOT_FOUND: { status: 404, message: 'no ModelServing {namespace}/{name}' },
  MS_ERR_CLI_WAIT_TIMEOUT: { status: 504, message: 'ModelServing {namespace}/{name} not Ready after {seconds} s: {state}' },
  MS_ERR_CLI_BATCH_WAIT_TIMEOUT: { status: 504, message: 'BatchPrediction {namespace}/{name} not finished after {seconds} s: {state}' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export type ErrorParams = Record<string, string | number | bigint>;

function render(template: string, params: ErrorParams): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in params ? String(params[key]) : whole));
}

/** An error with a stable code, an HTTP status and a message made from the table. */
export class ModelshipError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Seconds after which a retry may succeed (MS_ERR_MODEL_OVERLOADED): the response's Retry-After. */
  retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, params: ErrorParams = {}, options?: { cause?: unknown }) {
    super(render(ERRORS[code].message, params), options);
    this.name = 'ModelshipError';
    this.code = code;
    this.statusCode = ERRORS[code].status;
    this.retryAfterSeconds = undefined;
  }

  /** Rebuilds an error that crossed a thread boundary as plain data. */
  static restore(code: ErrorCode, message: string): ModelshipError {
    const err = new ModelshipError(code);
    err.message = message;
    return err;
  }

  /** The JSON body of an error response: OIP's `{"error": …}` plus the stable code. */
  toJSON(): { error: string; code: ErrorCode } {
    return { error: this.message, code: this.code };
  }
}

export function msError(code: ErrorCode, params: ErrorParams = {}, cause?: unknown): ModelshipError {
  return new ModelshipError(code, params, cause === undefined ? undefined : { cause });
}

export function isModelshipError(err: unknown): err is ModelshipError {
  return err instanceof ModelshipError;
}

/** A short, single-line description of any thrown value, for messages. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
