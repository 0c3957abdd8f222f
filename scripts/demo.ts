// `npm run demo`: modelship end to end on the embedded local environment, as far as the project has come.
// Brings the environment up (building it the first time), packs the iris example and pushes it to MinIO,
// starts the runtime on that s3:// bundle with its sha256 pinned, sends real predictions and prints what
// to type next. `npm run demo -- --down` stops the runtime and the environment.
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packBundle } from '../cli/pack.ts';
import { predictRemote } from '../cli/oip-client.ts';
import { pushBundle } from '../cli/push.ts';
import { down, type EnvInfo, isHealthy, readEnv, up } from '../test/env/env.ts';
import { freePort, isAlive, processStartTime, type ProcessRecord, stopProcess, tailFile } from '../test/env/process.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stateFile = join(root, '.modelship', 'demo.json');
const say = (msg: string) => process.stdout.write(`${msg}\n`);

class StepError extends Error {
  constructor(step: string, cause: unknown, logs?: string) {
    super(`step "${step}" failed: ${(cause as Error).message ?? cause}${logs ? `\n--- relevant log lines ---\n${logs}` : ''}`);
  }
}

async function step<T>(name: string, fn: () => Promise<T>, logFile?: string): Promise<T> {
  say(`==> ${name}`);
  try {
    return await fn();
  } catch (err) {
    throw new StepError(name, err, logFile ? await tailFile(logFile, 20) : undefined);
  }
}

async function stopDemo(): Promise<void> {
  if (existsSync(stateFile)) {
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { runtime: ProcessRecord };
    await stopProcess(state.runtime, 30_000);
    await rm(stateFile, { force: true });
    say('stopped the demo runtime');
  }
  const info = await readEnv();
  if (info) {
    await down(info);
    say('stopped the local environment');
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--down')) return stopDemo();
  if (existsSync(stateFile)) {
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { runtime: ProcessRecord };
    await stopProcess(state.runtime, 30_000);
  }

  const info: EnvInfo = await step('local environment (first run builds Kubernetes, MinIO, Kafka, helm: 30–40 min)', async () => {
    const existing = await readEnv();
    if (existing && (await isHealthy(existing))) return existing;
    if (existing) await down(existing);
    return up({ progress: (l) => say(`    ${l}`) });
  });

  const uri = 's3://models/iris/1/bundle.zip';
  const pushed = await step(`pack examples/iris/bundle and push it to ${uri} in MinIO`, async () => {
    const zip = join(root, '.modelship', 'iris.zip');
    await mkdir(dirname(zip), { recursive: true });
    const packed = await packBundle(join(root, 'examples/iris/bundle'), zip);
    const r = await pushBundle(packed.file, uri, { ...info.s3 }, { createBucket: true, progress: false });
    say(`    sha256 ${r.sha256} (${r.bytes} bytes)`);
    return r;
  });

  const port = await freePort();
  const logFile = join(info.root, 'logs', 'demo-runtime.log');
  const runtime = await step(
    `start the runtime on ${uri} (sha256 pinned), port ${port}`,
    async () => {
      const fd = openSync(logFile, 'a');
      const child = spawn(process.execPath, [join(root, 'runtime/main.ts')], {
        env: {
          ...process.env,
          MODELSHIP_MODEL_NAME: 'iris',
          MODELSHIP_BUNDLE_URI: uri,
          MODELSHIP_BUNDLE_SHA256: pushed.sha256,
          MODELSHIP_S3_ENDPOINT: info.s3.endpoint,
          MODELSHIP_S3_ACCESS_KEY: info.s3.accessKey,
          MODELSHIP_S3_SECRET_KEY: info.s3.secretKey,
          MODELSHIP_HOST: '127.0.0.1',
          MODELSHIP_PORT: String(port),
          MODELSHIP_WORK_DIR: join(info.root, 'demo-runtime'),
          MODELSHIP_TERMINATION_LOG: join(info.root, 'demo-runtime.termination-log'),
        },
        stdio: ['ignore', fd, fd],
        detached: true,
      });
      child.unref();
      const rec: ProcessRecord = {
        name: 'demo-runtime',
        pid: child.pid as number,
        startTime: processStartTime(child.pid as number) ?? '',
        command: [process.execPath, 'runtime/main.ts'],
        logFile,
      };
      await writeFile(stateFile, JSON.stringify({ runtime: rec }, null, 2));
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if (!isAlive(rec)) throw new Error('the runtime exited');
        const ok = await fetch(`http://127.0.0.1:${port}/v2/health/ready`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) return rec;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error('the runtime was not ready within 60 s');
    },
    logFile,
  );

  const url = `http://127.0.0.1:${port}`;
  await step(
    'predict three flowers over OIP v2',
    async () => {
      const flowers = [{ features: [5.1, 3.5, 1.4, 0.2] }, { features: [6.0, 2.9, 4.5, 1.5] }, { features: [6.7, 3.0, 5.2, 2.3] }];
      const { outputs, requestId } = await predictRemote(url, 'iris', flowers);
      outputs.forEach((o, i) => {
        const p = (o.probabilities as number[]).map((x) => x.toFixed(3)).join(', ');
        say(`    ${JSON.stringify(flowers[i]?.features)} → ${o.label}  (probabilities ${p})`);
      });
      say(`    request id ${requestId}`);
    },
    logFile,
  );

  say(`
modelship demo is running (runtime pid ${runtime.pid}, log ${logFile}).

Try next:
  npm run modelship -- predict ${url} -m iris -i '{"features": [6.3, 3.3, 6.0, 2.5]}'
  curl -s ${url}/v1/models/iris:predict -H 'content-type: application/json' -d '{"instances": [[5.9, 3.0, 5.1, 1.8]]}'
  curl -s ${url}/v2/models/iris
  curl -s ${url}/metrics | grep modelship_
  ${info.binaries.kubectl} --kubeconfig ${info.kubeconfig} get nodes
  npm run env:status
  npm run demo -- --down        # stop the runtime and the environment
`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exit(1);
  },
);
