import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadOperatorConfig, quantityBytes } from '../../operator/config.ts';
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

  it('reads storage quantities as bytes', () => {
    expect(quantityBytes('2Gi')).toBe(2 * 2 ** 30);
    expect(quantityBytes('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(quantityBytes('500M')).toBe(500e6);
    expect(quantityBytes('4096')).toBe(4096);
    expect(quantityBytes('2GB')).toBeNaN();
    expect(loadOperatorConfig({ MODELSHIP_BUNDLE_VOLUME_SIZE: '8Gi' }).bundleVolumeSize).toBe('8Gi');
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
    // The work volume sets the largest bundle (desired/deployment.ts maxBundleBytes): it must hold one.
    [
      { MODELSHIP_BUNDLE_VOLUME_SIZE: '100Mi' },
      'MODELSHIP_BUNDLE_VOLUME_SIZE must be a quantity of at least 256Mi such as 2Gi, got "100Mi"',
    ],
    [{ MODELSHIP_BUNDLE_VOLUME_SIZE: '2 GB' }, 'MODELSHIP_BUNDLE_VOLUME_SIZE must be a quantity of at least 256Mi such as 2Gi, got "2 GB"'],
  ])('refuses %j', (env, message) => {
    expect(() => loadOperatorConfig(env)).toThrow(message);
  });
});
