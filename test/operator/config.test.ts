import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadOperatorConfig } from '../../operator/config.ts';
import { SERVER_VERSION } from '../../common/version.ts';

describe('loadOperatorConfig', () => {
  it('defaults both runtime images to this version', () => {
    const c = loadOperatorConfig({});
    expect(c.runtimeImage).toBe(`modelship/runtime:${SERVER_VERSION}`);
    expect(c.runtimePythonImage).toBe(`modelship/runtime-python:${SERVER_VERSION}`);
    expect(c.pythonEnvCache).toEqual(DEFAULT_CONFIG.pythonEnvCache);
  });

  it('reads the Python settings', () => {
    const c = loadOperatorConfig({
      MODELSHIP_RUNTIME_PYTHON_IMAGE: 'reg/ms-py:2',
      MODELSHIP_PYTHON_ENV_CACHE: 'pvc:shared-envs',
      MODELSHIP_PYTHON_INDEX_URL: 'https://mirror/simple',
    });
    expect(c).toMatchObject({
      runtimePythonImage: 'reg/ms-py:2',
      pythonEnvCache: { kind: 'pvc', claimName: 'shared-envs' },
      pythonIndexUrl: 'https://mirror/simple',
    });
    expect(loadOperatorConfig({ MODELSHIP_PYTHON_ENV_CACHE_SIZE: '10Gi' }).pythonEnvCache).toEqual({ kind: 'emptyDir', sizeLimit: '10Gi' });
    expect(
      loadOperatorConfig({ MODELSHIP_PYTHON_ENV_CACHE: 'pvc:envs', MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS: 'local' }).pythonEnvCache,
    ).toEqual({ kind: 'pvc', claimName: 'envs', create: { storageClassName: 'local', size: '20Gi' } });
  });

  it.each([
    [
      { MODELSHIP_PYTHON_ENV_CACHE: 'hostPath:/var/cache' },
      'MODELSHIP_PYTHON_ENV_CACHE must be emptyDir or pvc:<claim name>, got "hostPath:/var/cache"',
    ],
    [{ MODELSHIP_PYTHON_ENV_CACHE_SIZE: 'lots' }, 'MODELSHIP_PYTHON_ENV_CACHE_SIZE must be a quantity such as 4Gi, got "lots"'],
    [
      { MODELSHIP_PYTHON_ENV_CACHE: 'pvc:envs', MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS: 'Fast SSD' },
      'MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS must be a storage class name, got "Fast SSD"',
    ],
    [{ MODELSHIP_OPERATOR_WORKERS: '0' }, 'MODELSHIP_OPERATOR_WORKERS must be a whole number in [1, 64], got "0"'],
  ])('refuses %j', (env, message) => {
    expect(() => loadOperatorConfig(env)).toThrow(message);
  });
});
