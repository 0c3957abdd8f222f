// The pure parts of the Python engine: the frames, the columns → rows split, the worker count and env, the
// requirements cache key.
import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRequirements, envKey, refusedRequirement, tail } from '../../runtime/engines/python/deps.ts';
import { columnsToRows, workerCount, workerEnv } from '../../runtime/engines/python/index.ts';
import type { ModelshipError } from '../../runtime/errors.ts';
import { decodeBody, encodeFrame, FrameReader, markerPath } from '../../runtime/engines/python/wire.ts';

describe('frames', () => {
  it('round-trips JSON, and typed arrays as raw buffers, through any chunking', () => {
    const msg = { op: 'predict', rows: [{ x: Float64Array.from([1.5, 2]) }, { x: Int32Array.from([7]) }], s: 'é' };
    const frame = encodeFrame(msg);
    expect(frame.readUInt32LE(0)).toBe(frame.length - 8);
    for (const size of [1, 3, 8, frame.length]) {
      const reader = new FrameReader(1 << 20);
      const got: unknown[] = [];
      for (let i = 0; i < frame.length; i += size) got.push(...reader.push(frame.subarray(i, i + size)));
      expect(got).toHaveLength(1);
      const m = got[0] as { rows: { x: { data: ArrayLike<number>; shape: number[] } }[]; s: string };
      expect(m.s).toBe('é');
      expect(Array.from(m.rows[0]?.x.data ?? [])).toEqual([1.5, 2]);
      expect(m.rows[0]?.x.data).toBeInstanceOf(Float64Array);
      expect(m.rows[1]?.x.shape).toEqual([1]);
    }
  });

  it('reads several frames from one chunk, and refuses a frame over the limit', () => {
    const two = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame({ b: 2 })]);
    expect(new FrameReader(1024).push(two)).toEqual([{ a: 1 }, { b: 2 }]);
    const big = encodeFrame({ pad: 'x'.repeat(100) });
    expect(() => new FrameReader(50).push(big)).toThrow('a Python worker sent a malformed message: frame of');
  });

  it("refuses a message whose data holds the wire's marker key, naming where (a 400, never an array to the worker)", () => {
    const refused = (msg: unknown) => {
      try {
        encodeFrame(msg);
      } catch (err) {
        return err as ModelshipError;
      }
      throw new Error('encoded');
    };
    // Without arrays of the runtime's own in the frame, and with them (the worker would read the frame's bytes).
    for (const x of [1, Float64Array.from([1, 2])]) {
      const err = refused({ op: 'predict', rows: [{ x }, { y: [{ ok: 1 }, { $nd: ['<f8', [1], 0, 8] }] }] });
      expect(err.code).toBe('MS_ERR_REQUEST_INVALID');
      expect(err.statusCode).toBe(400);
      expect(err.message).toBe(
        'invalid request: the key "$nd" (at rows[1].y[1].$nd) is reserved: it marks numeric arrays on the way to the Python workers; rename it',
      );
    }
    expect(markerPath({ body: { deep: [[{ a: { $nd: 0 } }]] } })).toBe('body.deep[0][0].a.$nd');
    // Where "$nd" is only text, the message goes as it is.
    for (const ok of [{ s: '$nd' }, { s: '"$nd":' }, { 'a"$nd': 1 }, { $nd2: 1 }, { x: Int32Array.from([1]), s: '{"$nd":1}' }]) {
      expect(new FrameReader(1 << 20).push(encodeFrame(ok))).toHaveLength(1);
    }
    expect(markerPath({ 'a"$nd': 1 })).toBeUndefined();
  });

  it('refuses an array that points outside its frame', () => {
    const json = Buffer.from(JSON.stringify({ v: { $nd: ['<f8', [4], 0, 32] } }));
    const body = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8), Buffer.alloc(8)]);
    expect(() => decodeBody(body, json.length)).toThrow('bad array');
  });
});

describe('columnsToRows', () => {
  it('splits 1-D columns into scalars (INT64 kept as bigint) and 2-D into per-row views', () => {
    const rows = columnsToRows(
      {
        label: { data: BigInt64Array.from([0n, 2n]), shape: [2] },
        proba: { data: Float64Array.from([0.9, 0.1, 0.2, 0.8]), shape: [2, 2] },
        names: ['a', 'b'],
      },
      2,
    );
    expect(rows[1]?.label).toBe(2n);
    expect(Array.from(rows[1]?.proba as Float64Array)).toEqual([0.2, 0.8]);
    expect(rows.map((r) => r.names)).toEqual(['a', 'b']);
  });

  it('refuses a column of the wrong length', () => {
    expect(() => columnsToRows({ y: [1] }, 2)).toThrow('column y does not hold 2 values');
  });
});

describe('workers', () => {
  it('counts one per CPU of the limit unless configured', () => {
    expect(workerCount(3, 1, 2)).toBe(3);
    expect(workerCount(0, 1, 2)).toBe(1);
    expect(workerCount(0, 8, 2)).toBe(2);
    expect(workerCount(0, undefined, 4)).toBe(4);
  });

  it("keeps the runtime's own settings and credentials out of the plugin's environment", () => {
    const env = workerEnv(
      { PATH: '/bin', MODELSHIP_S3_SECRET_KEY: 's', AWS_SECRET_ACCESS_KEY: 'a', MY_SETTING: '1' },
      ['/sdk', '/envs/k'],
      2,
    );
    expect(env.MODELSHIP_S3_SECRET_KEY).toBeUndefined();
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
    expect(env).toMatchObject({ PATH: '/bin', MY_SETTING: '1', PYTHONPATH: '/sdk:/envs/k', OMP_NUM_THREADS: '1', PYTHONUNBUFFERED: '1' });
    expect(workerEnv({}, ['/sdk'], 1).OMP_NUM_THREADS).toBeUndefined();
  });
});

describe('requirements environments', () => {
  it('are keyed by everything that changes what gets installed', () => {
    const base = { pythonIdentity: '3 11 3.11.7 linux-x86_64 cpython-311', indexUrl: undefined, wheels: [], requirements: 'six==1.16.0\n' };
    const k = envKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(envKey({ ...base })).toBe(k);
    for (const change of [
      { pythonIdentity: '3 12 3.12.1 linux-x86_64 cpython-312' },
      { indexUrl: 'https://m/simple' },
      { wheels: ['a.whl:00'] },
      { requirements: 'six==1.17.0\n' },
    ]) {
      expect(envKey({ ...base, ...change })).not.toBe(k);
    }
  });

  it("keep the installer's last lines for the message", () => {
    expect(tail('a\nb\nc\n', 2)).toBe('b\nc');
  });

  it("install only from the cluster's index: index options, URLs, VCS, editable and path requirements are refused", () => {
    for (const ok of [
      'numpy==2.4.6',
      'scikit-learn>=1.5,<2  # pinned below',
      '# a comment',
      '',
      'pandas[parquet]==2.2.3',
      'six==1.16.0 ; python_version >= "3.8" and sys_platform == \'linux\'',
      'six==1.16.0 --hash=sha256:00',
      '-r more.txt',
      '--hash=sha256:00',
      '--only-binary :all:',
    ]) {
      expect(refusedRequirement(ok), ok).toBeUndefined();
    }
    for (const [line, why] of [
      ['--extra-index-url https://evil.example/simple', /--extra-index-url names a package index/],
      ['--index-url=https://evil.example/simple', /--index-url names/],
      ['-i https://evil.example/simple', /-i names/],
      ['-ihttps://evil.example/simple', /-i names/],
      ['--find-links /tmp/wheels', /--find-links names/],
      ['-f https://evil.example/wheels', /-f names/],
      ['--trusted-host evil.example', /--trusted-host/],
      ['https://evil.example/pkg-1.0.tar.gz', /a URL requirement/],
      ['git+https://github.com/x/y', /a URL requirement/],
      ['pkg @ https://evil.example/pkg.whl', /a direct reference/],
      ['-e ./src', /-e names a package index or location/],
      ['../outside', /a path requirement/],
      ['-r https://evil.example/req.txt', /not a plain path inside the bundle/],
      ['-c /etc/constraints.txt', /not a plain path inside the bundle/],
      ['-r ../../req.txt', /not a plain path inside the bundle/],
      // Spellings that must not slip through (a second reader found them): any whitespace, quotes, other options.
      ['--index-url\thttps://evil.example/simple', /--index-url names/],
      ['-r\thttps://evil.example/r.txt', /not a plain path inside the bundle/],
      ['-r "https://evil.example/r.txt"', /quotes, variables and escapes/],
      ['-C k=v --index-url https://evil.example/simple', /-C is not an option taken here/],
      ['--config-settings k=v', /is not an option taken here/],
      ['six==1.16.0 --index-url https://evil.example/simple', /a URL requirement|--index-url after a requirement/],
      ['-e git+https://github.com/x/y', /-e names a package index or location/],
      ['./local-package', /a path requirement/],
      ['$' + '{PRIVATE_INDEX}/pkg.whl', /quotes, variables and escapes/],
    ] as const) {
      expect(refusedRequirement(line), line).toMatch(why);
    }
  });

  it('check the files a requirements.txt nests, naming each refused line by file and number', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-req-'));
    await mkdir(join(dir, 'reqs'));
    // A comment's trailing backslash continues nothing (uv ends a comment at its line), so the option after it is a
    // line of its own, and refused.
    await writeFile(
      join(dir, 'requirements.txt'),
      'numpy==2.4.6\n-r reqs/extra.txt\nsix==1.16.0 \\\n  --hash=sha256:00\n# note \\\n--index-url https://evil.example/simple\n',
    );
    await writeFile(join(dir, 'reqs', 'extra.txt'), '# extra\n--extra-index-url https://evil.example/simple\n-r extra.txt\n');
    expect(await checkRequirements(dir)).toEqual([
      "reqs/extra.txt line 2 (--extra-index-url https://evil.example/simple): --extra-index-url names a package index or location; the index is the cluster's",
      "requirements.txt line 6 (--index-url https://evil.example/simple): --index-url names a package index or location; the index is the cluster's",
    ]);
    await writeFile(join(dir, 'requirements.txt'), '-r missing.txt\n');
    expect(await checkRequirements(dir)).toEqual(['requirements.txt line 1: missing.txt is not in the bundle']);
  });
});
