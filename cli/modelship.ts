#!/usr/bin/env node
// `modelship`: the bundle author's command line: init, test, pack, push, serve, predict; deploy, status, delete; batch.
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { GROUP, type ModelServing, PLURAL, VERSION } from '../crds/modelserving.schema.ts';
import { MANIFEST_FILE, type Manifest, parseManifest, resolveBundle } from '../runtime/bundle/manifest.ts';
import { readZipEntry } from '../runtime/bundle/unzip.ts';
import { loadConfig } from '../runtime/config.ts';
import { BATCH_FORMATS, type BatchFormat, ENV, FORWARDED_AUTH_HEADER } from '../runtime/contract.ts';
import { isModelshipError } from '../runtime/errors.ts';
import { start } from '../runtime/server.ts';
import { SERVER_VERSION } from '../common/version.ts';
import { connect, deleteModelServing, EXIT_NOT_FOUND, podLogs, postThroughApiServer, requireModelServing } from './cluster.ts';
import { deploy, describeState, failure, keyValues, resourceName, waitReady } from './deploy.ts';
import { predictGrpc, predictRemote, readInferAnswer, toInferRequest } from './oip-client.ts';
import { packBundle } from './pack.ts';
import { pushBundle } from './push.ts';
import { runBundle } from './runner.ts';
import { batchWhere, describeBatch, parseColumns, submitBatch, waitBatch } from './batch.ts';
import { batchLocal } from './batch-local.ts';
import { s3Settings } from './s3.ts';
import { scaffold } from './scaffold.ts';

/** A local bundle's manifest (a directory's modelship.yaml, or the one inside a zip), if it has one. */
async function manifestOf(uri: string): Promise<Manifest | undefined> {
  if (!existsSync(uri)) return undefined;
  const text = (await stat(uri)).isDirectory()
    ? existsSync(resolve(uri, MANIFEST_FILE))
      ? await readFile(resolve(uri, MANIFEST_FILE), 'utf8')
      : undefined
    : await readZipEntry(uri, MANIFEST_FILE);
  return text === undefined ? undefined : parseManifest(text);
}

const manifestName = async (uri: string) => (await manifestOf(uri))?.name;

/**
 * The format of a local bundle as the runtime would tell it (its manifest, else its files), so the operator picks
 * the image with Python for a Python bundle; undefined for a zip without a manifest format.
 */
async function bundleFormat(uri: string): Promise<string | undefined> {
  if (existsSync(uri) && (await stat(uri)).isDirectory()) return (await resolveBundle(uri)).format;
  return (await manifestOf(uri))?.format;
}

/** `--input` is inline JSON or a path to a JSON file: an object, or an array of objects (a batch). */
export async function readInput(value: string): Promise<Record<string, unknown>[]> {
  const text =
    value.trim().startsWith('{') || value.trim().startsWith('[')
      ? value
      : await readFile(value, 'utf8').catch(() => {
          throw new Error(`--input is neither JSON nor a readable file: ${value}`);
        });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`--input is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (list.length === 0 || list.some((x) => x === null || typeof x !== 'object' || Array.isArray(x))) {
    throw new Error('--input must be a JSON object (one input) or an array of objects (a batch)');
  }
  return list as Record<string, unknown>[];
}

/** A whole number ≥ `min` for a numeric option, or commander's error naming the option's value. */
const wholeNumber =
  (min: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number >= ${min}`);
    return n;
  };

interface BatchCliOptions {
  input: string;
  output: string;
  format?: BatchFormat;
  outputFormat?: BatchFormat;
  columns?: string[];
  key?: string[];
  batchSize?: number;
  maxRowErrors?: number;
  rowsPerShard?: number;
  parallelism?: number;
  workers?: number;
  name?: string;
  namespace?: string;
  storageSecret?: string;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

export function program(): Command {
  const cli = new Command('modelship')
    .description('Package, test, publish and call modelship model bundles')
    .version(SERVER_VERSION)
    .showHelpAfterError()
    .exitOverride();

  cli
    .command('init')
    .description('scaffold a new JS bundle (predict.mjs, modelship.yaml, test-input.json)')
    .argument('<dir>', 'directory to create (must be empty or missing)')
    .action(async (dir: string) => {
      const files = await scaffold(dir);
      console.log(`created ${files.join(', ')}\nnext: modelship test ${dir} --input ${dir}/test-input.json`);
    });

  cli
    .command('test')
    .description('run a bundle locally on an input, with the same loader and output checks as the server')
    .argument('<bundle>', 'bundle directory or zip')
    .requiredOption('-i, --input <json|file>', 'input object, or array of objects, as JSON or a JSON file')
    .option('--log-level <level>', 'plugin log level', 'warn')
    .action(async (bundle: string, opts: { input: string; logLevel: string }) => {
      const inputs = await readInput(opts.input);
      const { outputs, signals } = await runBundle(bundle, inputs, { logLevel: opts.logLevel });
      console.log(JSON.stringify(outputs.length === 1 ? outputs[0] : outputs, null, 2));
      // Metrics and events the plugin returned go to stderr, so stdout stays the outputs alone.
      if (signals) console.error(`plugin signals: ${JSON.stringify(signals)}`);
    });

  cli
    .command('pack')
    .description('zip a bundle directory reproducibly and print its sha256')
    .argument('<dir>', 'bundle directory')
    .option('-o, --output <file>', 'zip to write', 'bundle.zip')
    .action(async (dir: string, opts: { output: string }) => {
      const r = await packBundle(dir, opts.output);
      console.log(`${r.file}: ${r.entries} files, ${r.bytes} bytes\nsha256 ${r.sha256}`);
    });

  cli
    .command('push')
    .description('upload a bundle zip to S3-compatible storage and print its sha256')
    .argument('<zip>', 'bundle zip')
    .argument('<uri>', 's3://bucket/key')
    .option('--endpoint <url>', `S3 endpoint (default $${ENV.s3Endpoint} or AWS)`)
    .option('--region <region>', 'S3 region')
    .option('--create-bucket', 'create the bucket if it does not exist')
    .addHelpText('after', `\nCredentials: $${ENV.s3AccessKey}/$${ENV.s3SecretKey} or $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY.`)
    .action(async (zip: string, uri: string, opts: { endpoint?: string; region?: string; createBucket?: boolean }) => {
      const r = await pushBundle(zip, uri, s3Settings(opts), { createBucket: opts.createBucket === true });
      console.log(`${r.uri}: ${r.bytes} bytes\nsha256 ${r.sha256}`);
    });

  cli
    .command('serve')
    .description('run the runtime locally on a bundle directory, zip or URI')
    .argument('<bundle>', 'directory, zip, file://, s3:// or https:// URI')
    .option('-p, --port <port>', 'port', '8080')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--name <name>', 'model name (default: the manifest name, else "model")')
    .option('--workers <n>', 'JS: worker threads for predict (0: in-process); Python: worker processes (0: one per CPU)', '0')
    .option('--sha256 <hex>', 'expected sha256 of the archive')
    .option('--grpc-port <port>', 'OIP gRPC port (default: a free port, printed)', '0')
    .action(
      async (bundle: string, opts: { port: string; grpcPort: string; host: string; name?: string; workers: string; sha256?: string }) => {
        const uri = existsSync(bundle) ? resolve(bundle) : bundle;
        const name = opts.name ?? process.env[ENV.modelName] ?? (await manifestName(uri));
        const config = loadConfig(process.env, {
          bundleUri: uri,
          port: Number(opts.port),
          grpcPort: Number(opts.grpcPort),
          host: opts.host,
          modelName: name ?? 'model',
          workers: Number(opts.workers),
          workDir: process.env[ENV.workDir] ?? resolve('.modelship', 'serve'),
          ...(opts.sha256 ? { bundleSha256: opts.sha256.toLowerCase() } : {}),
        });
        const rt = await start(config);
        const stop = () => void rt.shutdown().then(() => process.exit(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        console.error(`listening at ${rt.url} (HTTP) and ${config.host}:${rt.grpcPort} (OIP gRPC); loading ${config.modelName}`);
        await rt.loaded;
        console.error(
          `serving ${config.modelName} at ${rt.url}/v2/models/${config.modelName}/infer and OIP gRPC ${config.host}:${rt.grpcPort} (Ctrl-C to stop)`,
        );
      },
    );

  cli
    .command('predict')
    .description("send inputs to a model's OIP v2 endpoint and print the outputs: a runtime's URL, or a ModelServing's name")
    .argument(
      '<target>',
      'runtime base URL (http://127.0.0.1:8080), host:port with --grpc, or a ModelServing name (through the API server)',
    )
    .option('-m, --model <name>', 'model name (default: the ModelServing name)')
    .requiredOption('-i, --input <json|file>', 'input object, or array of objects, as JSON or a JSON file')
    .option('-n, --namespace <ns>', "with a ModelServing name: its namespace (default: the kubeconfig context's)")
    .option('--grpc', 'speak OIP gRPC: <target> is host:port of the gRPC port (8081)')
    .option(
      '--token <token>',
      'the bearer token for a model with spec.auth (a Kubernetes token made for it, e.g. `kubectl create token <sa>`, or an API key); default: $MODELSHIP_TOKEN. The kubeconfig credentials are never sent to a model',
    )
    .action(async (target: string, opts: { model?: string; input: string; namespace?: string; grpc?: boolean; token?: string }) => {
      const inputs = await readInput(opts.input);
      const explicit = opts.token ?? (process.env.MODELSHIP_TOKEN || undefined);
      const byName = !opts.grpc && !/^https?:\/\//.test(target) && !target.includes(':');
      let result: { outputs: Record<string, unknown>[]; requestId: string | null | undefined };
      if (byName) {
        // The ModelServing's Service through the API server's proxy: nobody needs a pod address.
        const c = await connect(opts.namespace);
        const model = opts.model ?? target;
        // The API server keeps Authorization for itself: the model's token travels in x-modelship-authorization. Only a
        // token given for the purpose: the kubeconfig's own credentials must never reach model code.
        const token = explicit;
        const r = await postThroughApiServer(
          c,
          target,
          `/v2/models/${encodeURIComponent(model)}/infer`,
          toInferRequest(inputs),
          token ? { [FORWARDED_AUTH_HEADER]: `Bearer ${token}` } : {},
        );
        const id = r.headers['x-request-id'];
        result = readInferAnswer(
          `ModelServing ${c.namespace}/${target} (through ${c.server})`,
          r.status,
          r.text,
          typeof id === 'string' ? id : null,
        );
      } else {
        if (!opts.model) throw new Error('-m, --model is required with a URL or --grpc');
        result = opts.grpc
          ? await predictGrpc(target, opts.model, inputs, undefined, explicit)
          : await predictRemote(target, opts.model, inputs, explicit);
      }
      console.log(JSON.stringify(result.outputs.length === 1 ? result.outputs[0] : result.outputs, null, 2));
      if (result.requestId) console.error(`request id ${result.requestId}`);
    });

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  cli
    .command('deploy')
    .description('pack and upload a bundle, apply a ModelServing for it (field manager modelship-cli) and wait for Ready')
    .argument('<bundle>', 'bundle directory or zip')
    .option('--name <name>', "ModelServing name (default: the bundle manifest's name, else the directory or zip name)")
    .option('-n, --namespace <ns>', "namespace (default: the kubeconfig context's)")
    .option('--replicas <n>', 'replicas (without autoscaling)', wholeNumber(0))
    .option('--cpu <q>', 'CPU request, e.g. 500m')
    .option('--memory <q>', 'memory request and limit, e.g. 512Mi')
    .option('--min <n>', 'autoscaling: fewest replicas', wholeNumber(1))
    .option('--max <n>', 'autoscaling: most replicas', wholeNumber(1))
    .option('--topic <topic>', 'inference logging: CREATE, NONE or an existing topic')
    .option(
      '--format <format>',
      "bundle format (js, onnx, python), for the runtime image; default: the bundle's, as the runtime tells it (its manifest, else its files)",
    )
    .option('--env <K=V>', 'runtime environment variable (repeatable)', collect)
    .option('--node-selector <K=V>', 'node label the pods must match (repeatable)', collect)
    .option('--tolerate <taint-key>', 'taint key the pods tolerate (repeatable)', collect)
    .option('--wait', 'wait for Ready, showing progress; exit non-zero with the reason if it fails')
    .option('--timeout <seconds>', 'with --wait: how long', wholeNumber(1), 300)
    .option('--dry-run', 'upload, then print the ModelServing YAML instead of applying it (for GitOps)')
    .option('--json', 'print the result as JSON (name, namespace, url, bundle, uploaded, wrote, the ModelServing)')
    .addHelpText(
      'after',
      "\nThe object store: storage.{endpoint, clusterEndpoint, bucket, region, accessKey, secretKey, clusterAccessKey, clusterSecretKey} in ~/.config/modelship/config.yaml ($MODELSHIP_CONFIG), or\n$MODELSHIP_S3_ENDPOINT, $MODELSHIP_S3_CLUSTER_ENDPOINT, $MODELSHIP_BUCKET, $MODELSHIP_S3_ACCESS_KEY/$MODELSHIP_S3_SECRET_KEY (yours: they upload) and\n$MODELSHIP_S3_CLUSTER_ACCESS_KEY/$MODELSHIP_S3_CLUSTER_SECRET_KEY (read-only: the only keys put in the cluster). The cluster: the kubeconfig's current context.",
    )
    .action(
      async (
        bundle: string,
        opts: {
          name?: string;
          namespace?: string;
          replicas?: number;
          cpu?: string;
          memory?: string;
          min?: number;
          max?: number;
          topic?: string;
          format?: string;
          env?: string[];
          nodeSelector?: string[];
          tolerate?: string[];
          wait?: boolean;
          timeout: number;
          dryRun?: boolean;
          json?: boolean;
        },
      ) => {
        const name = opts.name ?? (await manifestName(bundle)) ?? resourceName(bundle);
        const format = opts.format ?? (await bundleFormat(bundle));
        const r = await deploy(bundle, {
          ...opts,
          name,
          ...(format ? { format } : {}),
          env: keyValues(opts.env, '--env'),
          nodeSelector: keyValues(opts.nodeSelector, '--node-selector'),
          timeoutMs: opts.timeout * 1000,
        });
        if (opts.json) {
          const m = r.modelServing;
          const ns = m.metadata.namespace;
          console.log(
            JSON.stringify({
              name,
              namespace: ns,
              url: m.status?.url ?? null,
              bundle: m.spec.bundle,
              uploaded: r.uploaded,
              wrote: r.wrote,
              modelServing: m,
            }),
          );
          return;
        }
        if (opts.dryRun) {
          console.log(r.yaml.trimEnd());
          if (r.secret) {
            console.error(
              `the ModelServing refers to the Secret ${r.secret} (keys accessKey, secretKey) in its namespace; a deploy makes it, with --dry-run whoever applies: kubectl create secret generic ${r.secret} --from-literal=accessKey=… --from-literal=secretKey=…`,
            );
          }
          return;
        }
        const url = r.modelServing.status?.url;
        console.log(url ? `${name}: ${url}` : `${name}: applied (no URL yet; modelship status ${name})`);
      },
    );

  cli
    .command('status')
    .description('the ModelServings of a namespace, or one in detail: conditions, replicas, URL, the last failure')
    .argument('[name]', 'ModelServing name')
    .option('-n, --namespace <ns>', "namespace (default: the kubeconfig context's)")
    .option('--wait', 'with a name: wait for Ready, showing progress; exit non-zero with the reason if it fails')
    .option('--timeout <seconds>', 'with --wait: how long', wholeNumber(1), 300)
    .option('--json', 'with a name: print the ModelServing as JSON')
    .action(async (name: string | undefined, opts: { namespace?: string; wait?: boolean; timeout: number; json?: boolean }) => {
      const c = await connect(opts.namespace);
      if (name) {
        const m = opts.wait ? await waitReady(c, name, opts.timeout * 1000, (l) => console.error(l)) : await requireModelServing(c, name);
        if (opts.json) {
          console.log(JSON.stringify(m));
          return;
        }
        console.log(`${c.namespace}/${name}: ${describeState(m)}`);
        if (m.status?.url) console.log(`url: ${m.status.url}`);
        console.log(`bundle: ${m.spec.bundle.uri}${m.spec.bundle.sha256 ? ` (sha256 ${m.spec.bundle.sha256})` : ''}`);
        for (const cond of m.status?.conditions ?? []) {
          console.log(`  ${cond.type}=${cond.status} ${cond.reason ?? ''}${cond.message ? `: ${cond.message}` : ''}`);
        }
        const failed = failure(m);
        if (failed) console.log(`last failure: ${failed.code}: ${failed.message}`);
        return;
      }
      const list = (await c.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: c.namespace,
        plural: PLURAL,
      })) as {
        items: ModelServing[];
      };
      if (!list.items.length) console.log(`no ModelServings in ${c.namespace}`);
      for (const m of list.items) console.log(`${m.metadata.name}: ${describeState(m)}${m.status?.url ? ` ${m.status.url}` : ''}`);
    });

  cli
    .command('logs')
    .description("the runtime's log lines of a ModelServing's pods, through the API server (each line prefixed with its pod)")
    .argument('<name>', 'ModelServing name')
    .option('-n, --namespace <ns>', "namespace (default: the kubeconfig context's)")
    .option('--tail <lines>', 'only the last lines of each pod', wholeNumber(0))
    .option('-f, --follow', 'keep streaming')
    .action(async (name: string, opts: { namespace?: string; tail?: number; follow?: boolean }) => {
      const c = await connect(opts.namespace);
      const r = await podLogs(c, name, opts, (line) => console.log(line));
      if (r.failed.length === r.pods.length) throw new Error(`no logs could be read from the pods of ${c.namespace}/${name}`);
    });

  cli
    .command('delete')
    .description('delete a ModelServing (its Deployment, Service, HPA and PDB go with it)')
    .argument('<name>', 'ModelServing name')
    .option('-n, --namespace <ns>', "namespace (default: the kubeconfig context's)")
    .action(async (name: string, opts: { namespace?: string }) => {
      const c = await connect(opts.namespace);
      await deleteModelServing(c, name);
      console.log(`deleted ModelServing ${c.namespace}/${name}`);
    });
  const batchFormat = (flag: string) => (value: string) => {
    if (!(BATCH_FORMATS as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`${flag} must be one of ${BATCH_FORMATS.join(', ')}`);
    }
    return value as BatchFormat;
  };
  cli
    .command('batch')
    .description(
      'predict over a dataset (Parquet, CSV or JSON Lines): a local file or directory runs here; an s3:// input runs as a BatchPrediction in the cluster',
    )
    .argument('<model>', 'a bundle directory or zip, or ms/NAME for a ModelServing (cluster only)')
    .requiredOption(
      '-i, --input <uri>',
      'input: a file, directory or glob (local), or s3://bucket/prefix (a glob in the last part allowed)',
    )
    .requiredOption('-o, --output <uri>', 'output: a directory (local) or s3://bucket/prefix')
    .option('--format <format>', 'input format (default: from the file extension)', batchFormat('--format'))
    .option('--output-format <format>', "output format (default: the input's)", batchFormat('--output-format'))
    .option('--columns <input=col,…>', 'map a model input to its column(s), repeatable (default: inputs named as columns)', collect)
    .option('--key <column>', 'an input column copied onto each output row, repeatable (default: the file and row index)', collect)
    .option('--batch-size <n>', 'rows per model call (default 1024)', wholeNumber(1))
    .option('--max-row-errors <n>', 'rows a shard may have refused before it fails (default 100)', wholeNumber(0))
    .option(
      '--rows-per-shard <n>',
      'the most rows in a shard (default 1000000; a cluster run cuts the rows into at least --parallelism shards)',
      wholeNumber(1),
    )
    .option('--parallelism <n>', 'cluster: pods at once (default 2)', wholeNumber(1))
    .option('--workers <n>', 'local: Python worker processes / JS threads (default: one per CPU / in-process)', wholeNumber(0))
    .option('--name <name>', 'cluster: the BatchPrediction name (default: generated)')
    .option('-n, --namespace <ns>', "cluster: namespace (default: the kubeconfig context's)")
    .option('--storage-secret <name>', 'cluster: a Secret (accessKey, secretKey) that reads the input and writes the output')
    .option('--wait', 'cluster: follow the BatchPrediction to the end (progress on stderr)')
    .option('--timeout <seconds>', 'cluster: how long --wait waits (default 3600)', wholeNumber(1))
    .option('--json', 'print the result (local) or the final status (cluster) as one JSON object')
    .action(async (model: string, opts: BatchCliOptions) => {
      const common = {
        input: opts.input,
        output: opts.output,
        format: opts.format,
        outputFormat: opts.outputFormat,
        columns: parseColumns(opts.columns),
        keyColumns: opts.key,
        batchSize: opts.batchSize,
        maxRowErrors: opts.maxRowErrors,
        rowsPerShard: opts.rowsPerShard,
      };
      if (batchWhere(opts.input, opts.output) === 'local') {
        if (model.startsWith('ms/')) throw new Error('a ModelServing (ms/NAME) runs batches in its cluster: give an s3:// --input');
        const bar =
          process.stderr.isTTY && !opts.json
            ? new SingleBar({ format: 'batch [{bar}] {value}/{total} rows', stream: process.stderr })
            : undefined;
        const result = await batchLocal(model, {
          ...common,
          workers: opts.workers,
          onProgress: (done, total) => {
            if (bar && !bar.isActive) bar.start(total, 0);
            bar?.update(done);
          },
        }).finally(() => bar?.stop());
        if (opts.json) console.log(JSON.stringify(result));
        else
          console.log(
            `${result.rows} rows scored${result.errorRows ? `, ${result.errorRows} refused (errors/)` : ''} in ${result.seconds.toFixed(1)} s (${Math.round((result.rows + result.errorRows) / result.seconds)} rows/s): ${result.output}`,
          );
        return;
      }
      const log = (m: string) => console.error(m);
      const { c, bp } = await submitBatch(
        model,
        { ...common, parallelism: opts.parallelism, name: opts.name, namespace: opts.namespace, storageSecret: opts.storageSecret },
        log,
      );
      const name = bp.metadata?.name as string;
      const final = opts.wait ? await waitBatch(c, name, (opts.timeout ?? 3600) * 1000, log) : bp;
      if (opts.json) console.log(JSON.stringify({ name, namespace: c.namespace, ...(final.status ?? {}) }));
      else
        console.log(
          opts.wait
            ? `${name}: ${describeBatch(final)}; output ${final.status?.outputUri ?? opts.output}`
            : `created BatchPrediction ${c.namespace}/${name}`,
        );
    });

  return cli;
}

export async function run(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const msg = isModelshipError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
    // A program calling the CLI (the Python client) reads the error as a record, not as text.
    if (process.env.MODELSHIP_ERROR_FORMAT === 'json') {
      const record = { code: isModelshipError(err) ? err.code : null, message: (err as Error).message };
      console.error(`modelship-error: ${JSON.stringify(record)}`);
    } else console.error(`modelship: ${msg}`);
    return isModelshipError(err) && err.code === 'MS_ERR_CLI_NOT_FOUND' ? EXIT_NOT_FOUND : 1;
  }
}

if (import.meta.main) {
  const code = await run(process.argv.slice(2));
  // `serve` keeps running; everything else exits with its status. A serve that failed to start exits at once,
  // whatever it had begun (a download, Python workers).
  if (code !== 0 && process.argv[2] === 'serve') process.exit(code);
  if (process.argv[2] !== 'serve') process.exitCode = code;
}
