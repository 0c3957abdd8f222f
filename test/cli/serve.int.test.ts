// `modelship serve` on a zip names the model by its manifest, and `modelship predict` reaches it over REST
// and over OIP gRPC.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';

const CLI = join(import.meta.dirname, '../../cli/modelship.ts');
const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
let server: ChildProcess | undefined;
afterAll(() => {
  server?.kill('SIGTERM');
});

describe('modelship serve and predict', () => {
  it('serves a zip under its manifest name; predict works over REST and gRPC', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-serve-'));
    const { file } = await packBundle(IRIS, join(tmp, 'iris.zip'));
    server = spawn(process.execPath, [CLI, 'serve', file, '--port', '0', '--grpc-port', '0'], {
      env: { ...process.env, MODELSHIP_WORK_DIR: join(tmp, 'work'), MODELSHIP_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "serving" line: ${err}`)), 30_000);
      server?.stderr?.on('data', (b: Buffer) => {
        err += b.toString();
        const m = /^serving .*$/m.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      });
    });
    const m = /^serving (\S+) at (http:\/\/[^/]+)\/v2\/models\/\S+\/infer and OIP gRPC (\S+) /.exec(line);
    expect(m?.[1]).toBe('iris');
    const run = (args: string[]) => promisify(execFile)(process.execPath, [CLI, 'predict', ...args], { timeout: 30_000 });
    const input = '{"features":[5.1,3.5,1.4,0.2]}';
    const rest = await run([m?.[2] as string, '-m', 'iris', '-i', input]);
    expect(JSON.parse(rest.stdout).label).toBe('setosa');
    const grpc = await run([m?.[3] as string, '--grpc', '-m', 'iris', '-i', input]);
    expect(JSON.parse(grpc.stdout).label).toBe('setosa');
    expect(grpc.stderr).toMatch(/^request id [0-9a-f-]{36}$/m);
    const wrong = await run([m?.[3] as string, '--grpc', '-m', 'nope', '-i', input]).catch((e: { stderr: string }) => e);
    expect((wrong as { stderr: string }).stderr).toContain(
      'NOT_FOUND: MS_ERR_MODEL_NOT_FOUND: model "nope" is not served here; this server serves "iris"',
    );
  });
});
