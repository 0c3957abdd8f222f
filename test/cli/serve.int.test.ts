// `modelship serve` on a zip names the model by its manifest, and `modelship predict` reaches it over REST
// and over OIP gRPC.
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { CLI, SERVING, serveProcess } from './serve-process.ts';

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) s.kill('SIGTERM');
});

/** Starts `modelship serve`; resolves with its "serving …" line once the model is ready. */
async function serve(args: string[], workDir: string): Promise<string> {
  const { child, serving } = serveProcess(args, { ...process.env, MODELSHIP_WORK_DIR: workDir, MODELSHIP_LOG_LEVEL: 'warn' });
  servers.push(child);
  return (await serving).line;
}

describe('modelship serve and predict', () => {
  it('serves a zip under its manifest name; predict works over REST and gRPC', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-serve-'));
    const { file } = await packBundle(IRIS, join(tmp, 'iris.zip'));
    const line = await serve([file, '--port', '0'], join(tmp, 'work'));
    const m = SERVING.exec(line);
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

  it('takes a free gRPC port by default, so two run side by side; a port it cannot bind stops it with the code', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-serve-'));
    const [a, b] = await Promise.all([serve([IRIS, '--port', '0'], join(tmp, 'a')), serve([IRIS, '--port', '0'], join(tmp, 'b'))]);
    const grpcA = SERVING.exec(a)?.[3] as string;
    const grpcB = SERVING.exec(b)?.[3] as string;
    expect(grpcA).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(grpcB).not.toBe(grpcA);
    const taken = grpcA.split(':')[1] as string;
    const failed = await promisify(execFile)(process.execPath, [CLI, 'serve', IRIS, '--port', '0', '--grpc-port', taken], {
      env: { ...process.env, MODELSHIP_WORK_DIR: join(tmp, 'c'), MODELSHIP_LOG_LEVEL: 'silent' },
      timeout: 30_000,
    }).catch((e: { code: number; stderr: string; killed: boolean }) => e);
    const f = failed as { code: number; stderr: string; killed: boolean };
    expect(f.killed).toBeFalsy();
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`MS_ERR_LISTEN_FAILED: cannot listen for gRPC on 127.0.0.1:${taken}`);
  });
});
