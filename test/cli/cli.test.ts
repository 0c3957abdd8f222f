import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { readInput, run } from '../../cli/modelship.ts';
import { fromInferOutputs, toInferRequest } from '../../cli/oip-client.ts';
import { packBundle } from '../../cli/pack.ts';
import { captureConsole } from './console.ts';

const { out, err } = captureConsole();

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');

describe('modelship CLI', () => {
  it('init scaffolds a bundle that `test` runs with its own test input', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'cli-')), 'my-model');
    expect(await run(['init', dir])).toBe(0);
    expect(await run(['test', dir, '--input', join(dir, 'test-input.json')])).toBe(0);
    expect(JSON.parse(out.at(-1) as string)).toEqual({ score: 0.6, positive: true });
    expect(await run(['init', dir])).toBe(1);
    expect(err.at(-1)).toMatch(/is not empty$/);
  });

  it('test runs a zip and a batch, and reports errors with their code', async () => {
    const zip = join(await mkdtemp(join(tmpdir(), 'cli-')), 'iris.zip');
    await packBundle(IRIS, zip);
    expect(await run(['test', zip, '-i', '[{"features":[5.1,3.5,1.4,0.2]},{"features":[6.7,3.0,5.2,2.3]}]'])).toBe(0);
    expect(JSON.parse(out.at(-1) as string).map((o: { label: string }) => o.label)).toEqual(['setosa', 'virginica']);
    expect(await run(['test', IRIS, '-i', '{"features":[1]}'])).toBe(1);
    expect(err.at(-1)).toBe(
      'modelship: MS_ERR_INPUT_INVALID: invalid input: input "features" (instance 0) has 1 values; the model declares 4',
    );
  });

  it('pack is reproducible and refuses links', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-'));
    const a = await packBundle(IRIS, join(tmp, 'a.zip'));
    await new Promise((r) => setTimeout(r, 1100));
    const b = await packBundle(IRIS, join(tmp, 'b.zip'));
    expect(a.sha256).toBe(b.sha256);
    expect((await readFile(a.file)).equals(await readFile(b.file))).toBe(true);
    const linked = await mkdtemp(join(tmpdir(), 'cli-link-'));
    await writeFile(join(linked, 'predict.mjs'), 'export const predict = (x) => x;');
    await symlink('/etc/passwd', join(linked, 'passwd'));
    await expect(packBundle(linked, join(tmp, 'c.zip'))).rejects.toThrow('passwd is a symbolic link');
    await rm(tmp, { recursive: true, force: true });
  });

  it('reads --input as JSON or a file and explains what it wants', async () => {
    expect(await readInput('{"a":1}')).toEqual([{ a: 1 }]);
    await expect(readInput('[1,2]')).rejects.toThrow('--input must be a JSON object (one input) or an array of objects (a batch)');
    await expect(readInput('{bad')).rejects.toThrow(/^--input is not valid JSON/);
    await expect(readInput('/nonexistent.json')).rejects.toThrow('--input is neither JSON nor a readable file: /nonexistent.json');
  });

  it('answers unknown commands and missing options with usage and a non-zero status', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await run(['bogus'])).not.toBe(0);
    expect(await run(['test', IRIS])).not.toBe(0);
    expect(write.mock.calls.map((c) => String(c[0])).join('')).toContain("required option '-i, --input <json|file>' not specified");
  });
});

describe('OIP client mapping', () => {
  it('turns input objects into tensors and outputs back into objects', () => {
    expect(
      toInferRequest([
        { f: [1, 2], s: 'a' },
        { f: [3, 4], s: 'b' },
      ]),
    ).toEqual({
      inputs: [
        { name: 'f', shape: [2, 2], datatype: 'FP64', data: [1, 2, 3, 4] },
        { name: 's', shape: [2], datatype: 'BYTES', data: ['a', 'b'] },
      ],
    });
    expect(
      fromInferOutputs([
        { name: 'p', shape: [2, 2], datatype: 'FP64', data: [0.1, 0.9, 0.8, 0.2] },
        { name: 'l', shape: [2], datatype: 'BYTES', data: ['b', 'a'] },
      ]),
    ).toEqual([
      { p: [0.1, 0.9], l: 'b' },
      { p: [0.8, 0.2], l: 'a' },
    ]);
  });
});
