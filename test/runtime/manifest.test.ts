import { describe, expect, it } from 'vitest';
import { parseManifest, resolveBundle } from '../../runtime/bundle/manifest.ts';
import { makeBundle } from './helpers.ts';

describe('parseManifest', () => {
  it('accepts a full manifest', () => {
    const m = parseManifest(`
name: iris
version: "2"
format: js
entrypoint: src/predict.mjs
inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]
outputs: [{name: y, datatype: BYTES, shape: [-1]}]
batching: {maxBatchSize: 32, maxLatencyMs: 5}
parameters: {threshold: 0.5}
`);
    expect(m).toMatchObject({ name: 'iris', format: 'js', parameters: { threshold: 0.5 } });
  });

  it('treats an empty file as an empty manifest', () => {
    expect(parseManifest('')).toEqual({});
  });

  it.each([
    ['format: tensorflow', 'MS_ERR_MANIFEST_INVALID', '/format must be one of js, onnx, python'],
    ['nmae: iris', 'MS_ERR_MANIFEST_INVALID', '(root) has unknown field nmae'],
    ['name: Iris Model', 'MS_ERR_MANIFEST_INVALID', '/name must match pattern'],
    ['inputs: [{name: x, datatype: FP99, shape: [1]}]', 'MS_ERR_MANIFEST_INVALID', '/inputs/0/datatype must be one of BOOL'],
    ['inputs: [{name: x, shape: [1]}]', 'MS_ERR_MANIFEST_INVALID', '/inputs/0 is missing required field datatype'],
    ['batching: {maxBatchSize: 0}', 'MS_ERR_MANIFEST_INVALID', '/batching/maxBatchSize must be >= 1'],
    ['name: [unclosed', 'MS_ERR_MANIFEST_PARSE', 'modelship.yaml is not valid YAML'],
    ['- a list', 'MS_ERR_MANIFEST_INVALID', 'the document must be a mapping'],
  ])('refuses %j with a clear message', (text, code, message) => {
    expect(() => parseManifest(text)).toThrow(expect.objectContaining({ code, message: expect.stringContaining(message) }));
  });
});

describe('resolveBundle', () => {
  it('detects the format without a manifest', async () => {
    expect(await resolveBundle(await makeBundle({ 'predict.js': '' }))).toMatchObject({ format: 'js', entrypoint: 'predict.js' });
    expect(await resolveBundle(await makeBundle({ 'model.onnx': '' }))).toMatchObject({ format: 'onnx', entrypoint: 'model.onnx' });
    expect(await resolveBundle(await makeBundle({ 'predict.py': '' }))).toMatchObject({ format: 'python' });
  });

  it('prefers predict.mjs, honours the manifest entrypoint, and explains what is missing', async () => {
    expect(await resolveBundle(await makeBundle({ 'predict.mjs': '', 'predict.js': '' }))).toMatchObject({ entrypoint: 'predict.mjs' });
    expect(await resolveBundle(await makeBundle({ 'modelship.yaml': 'entrypoint: lib/main.mjs', 'lib/main.mjs': '' }))).toMatchObject({
      format: 'js',
      entrypoint: 'lib/main.mjs',
    });
    await expect(resolveBundle(await makeBundle({ 'README.md': '' }))).rejects.toMatchObject({ code: 'MS_ERR_BUNDLE_FORMAT_UNKNOWN' });
    await expect(resolveBundle(await makeBundle({ 'modelship.yaml': 'entrypoint: nope.mjs' }))).rejects.toThrow(
      '/entrypoint nope.mjs does not exist in the bundle',
    );
    await expect(resolveBundle(await makeBundle({ 'modelship.yaml': 'entrypoint: ../x.mjs' }))).rejects.toMatchObject({
      code: 'MS_ERR_MANIFEST_INVALID',
    });
  });
});
