import { describe, expect, it } from 'vitest';
import { imageEnv, type NodePython, resourceField, runtimeImage } from '../../env/process-node.ts';

describe('runtimeImage', () => {
  it.each([
    ['modelship/runtime', 'runtime'],
    ['ghcr.io/acme/modelship/runtime:0.4.0', 'runtime'],
    ['localhost:5000/modelship/runtime@sha256:abc123', 'runtime'],
    ['modelship/runtime-python', 'runtime-python'],
    ['ghcr.io/acme/modelship/runtime-python:0.4.0', 'runtime-python'],
    ['modelship/runtime-python:0.4.0@sha256:abc123', 'runtime-python'],
  ])('%s is %s', (image, kind) => {
    expect(runtimeImage(image)).toBe(kind);
  });

  it.each(['nginx:1.27', 'modelship/runtime-gpu:1', 'modelship/runtimes:1', 'acme/runtime:1', 'modelship/runtime:1/x', ''])(
    'refuses %j',
    (image) => {
      expect(runtimeImage(image)).toBeUndefined();
    },
  );
});

describe('imageEnv', () => {
  const python: NodePython = { python: '/cache/python/venv/bin/python', uv: '/cache/python/uv/bin/uv', envDir: '/node/python-envs' };

  it('gives runtime-python pods the node Python, uv and shared requirements cache', () => {
    expect(imageEnv('runtime-python', python)).toEqual({
      MODELSHIP_PYTHON: python.python,
      MODELSHIP_UV: python.uv,
      MODELSHIP_PYTHON_ENV_DIR: '/node/python-envs',
    });
  });

  it('gives plain runtime pods no Python: that image has none', () => {
    expect(imageEnv('runtime', python)).toEqual({});
  });
});

describe('resourceField', () => {
  it("resolves a CPU limit in whole CPUs, rounded up, and the node's without a limit", () => {
    expect(resourceField('limits.cpu', { limits: { cpu: '1500m' } }, '1')).toBe('2');
    expect(resourceField('limits.cpu', { limits: { cpu: '1' } }, '1')).toBe('1');
    expect(resourceField('limits.cpu', {}, '1')).toBe('2');
    expect(resourceField('requests.memory', { requests: { memory: '256Mi' } }, '1Mi')).toBe('256');
  });
});
