import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEntryName, unzipSafely } from '../../runtime/bundle/unzip.ts';
import { isModelshipError } from '../../runtime/errors.ts';
import { type RawEntry, rawZip } from './zip-writer.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'unzip-test-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const limits = { maxEntries: 100, maxTotalBytes: 10 * 1024 * 1024, maxRatio: 100 };
let n = 0;

async function unpack(entries: RawEntry[], lim = limits) {
  const base = join(root, `case-${n++}`);
  const zip = `${base}.zip`;
  await writeFile(zip, rawZip(entries));
  const target = join(base, 'out', 'bundle');
  const result = await unzipSafely(zip, target, lim).catch((e: unknown) => e);
  return { base, target, result };
}

/** Every file under `dir`, relative. */
function listAll(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((d) => join(d.parentPath, d.name).slice(dir.length));
}

describe('unzipSafely', () => {
  it('unpacks a normal archive, directories included', async () => {
    const { target, result } = await unpack([
      { name: 'predict.mjs', data: 'export const predict = (x) => x;' },
      { name: 'model/', data: '' },
      { name: 'model/weights.json', data: '{"w":[1,2]}', method: 0 },
    ]);
    expect(result).toEqual({ entries: 3, bytes: 43 });
    expect(await readFile(join(target, 'model/weights.json'), 'utf8')).toBe('{"w":[1,2]}');
  });

  it.each([
    ['zip slip (..)', [{ name: '../../evil.txt', data: 'x' }], 'MS_ERR_BUNDLE_PATH_ESCAPE'],
    ['nested zip slip', [{ name: 'a/../../evil.txt', data: 'x' }], 'MS_ERR_BUNDLE_PATH_ESCAPE'],
    ['absolute path', [{ name: '/tmp/evil.txt', data: 'x' }], 'MS_ERR_BUNDLE_ABSOLUTE_PATH'],
    ['windows drive path', [{ name: 'C:/evil.txt', data: 'x' }], 'MS_ERR_BUNDLE_ABSOLUTE_PATH'],
    ['zip slip with Windows separators', [{ name: '..\\evil.txt', data: 'x' }], 'MS_ERR_BUNDLE_PATH_ESCAPE'],
    ['symlink', [{ name: 'link', data: '/etc/passwd', unixMode: 0o120777 }], 'MS_ERR_BUNDLE_SYMLINK'],
    ['device file', [{ name: 'dev', data: '', unixMode: 0o020644 }], 'MS_ERR_BUNDLE_SPECIAL_FILE'],
    [
      'duplicate entries',
      [
        { name: 'a.txt', data: '1' },
        { name: 'a.txt', data: '2' },
      ],
      'MS_ERR_BUNDLE_DUPLICATE_ENTRY',
    ],
  ] as [string, RawEntry[], string][])('refuses %s and writes nothing', async (_what, entries, code) => {
    const { base, result } = await unpack([{ name: 'ok.txt', data: 'fine' }, ...entries]);
    expect(isModelshipError(result)).toBe(true);
    expect((result as { code: string }).code).toBe(code);
    expect(listAll(join(base, 'out'))).toEqual([]);
    expect(existsSync(join(root, 'evil.txt'))).toBe(false);
    expect(existsSync(join(base, 'evil.txt'))).toBe(false);
  });

  it('refuses too many entries before reading them', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    const { result } = await unpack(entries, { ...limits, maxEntries: 10 });
    expect((result as Error).message).toBe('bundle has 11 entries; the limit is 10');
    expect((result as { code: string }).code).toBe('MS_ERR_BUNDLE_TOO_MANY_ENTRIES');
  });

  it('refuses a zip bomb by its compression ratio', async () => {
    const { base, result } = await unpack([{ name: 'zeros.bin', data: Buffer.alloc(8 * 1024 * 1024) }]);
    expect((result as { code: string }).code).toBe('MS_ERR_BUNDLE_COMPRESSION_RATIO');
    expect((result as Error).message).toMatch(/bundle entry "zeros.bin" expands \d+x; the limit is 100x/);
    expect(listAll(join(base, 'out'))).toEqual([]);
  });

  it('refuses an archive that unpacks past the size limit', async () => {
    const random = Buffer.from(Buffer.alloc(64 * 1024).map((_, i) => (i * 2654435761) >>> 24));
    const { result } = await unpack(
      [
        { name: 'a.bin', data: random, method: 0 },
        { name: 'b.bin', data: random, method: 0 },
      ],
      { ...limits, maxTotalBytes: 100 * 1024 },
    );
    expect((result as { code: string }).code).toBe('MS_ERR_BUNDLE_TOO_LARGE');
  });

  it('catches an entry that holds more than its header declares', async () => {
    const { base, result } = await unpack([{ name: 'liar.bin', data: Buffer.alloc(4096, 1), method: 0, declaredSize: 16 }]);
    expect(isModelshipError(result)).toBe(true);
    expect(['MS_ERR_BUNDLE_CORRUPT']).toContain((result as { code: string }).code);
    expect(listAll(join(base, 'out'))).toEqual([]);
  });

  it('refuses a file that is not a zip', async () => {
    const zip = join(root, 'not-a.zip');
    await writeFile(zip, 'hello, I am text');
    const err = await unzipSafely(zip, join(root, 'x'), limits).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('MS_ERR_BUNDLE_CORRUPT');
  });
});

describe('checkEntryName', () => {
  it('normalizes harmless names', () => {
    expect(checkEntryName('a/./b.txt')).toBe('a/b.txt');
    expect(checkEntryName('dir/')).toBe('dir');
  });
  it.each([
    ['', 'MS_ERR_BUNDLE_ENTRY_NAME'],
    ['./', 'MS_ERR_BUNDLE_ENTRY_NAME'],
    ['a\0b', 'MS_ERR_BUNDLE_ENTRY_NAME'],
    ['..', 'MS_ERR_BUNDLE_PATH_ESCAPE'],
    ['a\\b', 'MS_ERR_BUNDLE_ENTRY_NAME'],
  ])('refuses %j', (name, code) => {
    expect(() => checkEntryName(name)).toThrow(expect.objectContaining({ code }));
  });
});
