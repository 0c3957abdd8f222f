import { ApiException, type KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { needsApply, withHash } from '../../operator/kube/apply.ts';
import { containsFields } from '../../operator/kube/compare.ts';
import { apiError, isNamespaceTerminating } from '../../operator/kube/errors.ts';
import { WorkQueue } from '../../operator/kube/queue.ts';

describe('WorkQueue', () => {
  it('deduplicates keys and never hands one key to two workers', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/a');
    q.add('ns/b');
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe('ns/a');
    q.add('ns/a'); // while processing: marked dirty, not queued
    expect(await q.get()).toBe('ns/b');
    expect(q.length).toBe(0);
    q.done('ns/a'); // dirty → queued again
    expect(await q.get()).toBe('ns/a');
  });

  it('backs off failures exponentially per key, and forget resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    expect([q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k'), q.addRateLimited('k')]).toEqual([10, 20, 40, 50]);
    q.forget('k');
    expect(q.failuresOf('k')).toBe(0);
    expect(q.addRateLimited('k')).toBe(10);
    q.shutdown();
  });

  it('delivers timed re-checks and wakes waiting workers; shutdown releases them', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter('ns/later', 20);
    expect(await waiting).toBe('ns/later');
    const blocked = q.get();
    q.shutdown();
    expect(await blocked).toBeUndefined();
  });
});

describe('containsFields / needsApply', () => {
  it('treats server-added fields as harmless and our fields as binding', () => {
    expect(containsFields({ a: 1, b: { c: 'x', d: 2 }, extra: true }, { a: 1, b: { c: 'x' } })).toBe(true);
    expect(containsFields({ a: 1, b: { c: 'y' } }, { a: 1, b: { c: 'x' } })).toBe(false);
    expect(containsFields({ l: [{ n: 1, z: 0 }] }, { l: [{ n: 1 }] })).toBe(true);
    expect(containsFields({ l: [{ n: 1 }, { n: 2 }] }, { l: [{ n: 1 }] })).toBe(false);
    expect(containsFields({ q: 1 }, { q: '1' })).toBe(true);
  });

  it('applies when the object is missing, changed by hand, or our desired state changed', () => {
    const desired = withHash({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 's', namespace: 'n' },
      spec: { ports: [{ port: 80 }] },
    });
    // as an informer returns it: no apiVersion/kind, extra fields
    const observed = {
      metadata: { ...desired.metadata, uid: 'u', resourceVersion: '7' },
      spec: { ports: [{ port: 80, protocol: 'TCP' }], clusterIP: '10.0.0.9' },
    };
    expect(needsApply(desired, undefined)).toBe(true);
    expect(needsApply(desired, observed)).toBe(false);
    expect(needsApply(desired, { ...observed, spec: { ports: [{ port: 81 }] } } as KubernetesObject)).toBe(true);
    const changed = withHash({
      ...desired,
      metadata: { name: 's', namespace: 'n' },
      spec: { ports: [{ port: 80, name: 'http' }] },
    } as KubernetesObject);
    expect(needsApply(changed, observed)).toBe(true);
  });
});

describe('apiError', () => {
  const terminating = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'services "m0" is forbidden: unable to create new content in namespace x because it is being terminated',
    reason: 'Forbidden',
    details: { name: 'm0', kind: 'services', causes: [{ reason: 'NamespaceTerminating', message: 'namespace x is being terminated' }] },
    code: 403,
  });

  it("reads the Status out of client-node's error, without the headers it repeats", () => {
    const err = new ApiException(403, 'Unsuccessful HTTP Request', terminating, { 'audit-id': 'a' });
    expect(err.message).toContain('audit-id');
    expect(apiError(err)).toEqual({
      code: 403,
      message: 'services "m0" is forbidden: unable to create new content in namespace x because it is being terminated',
      causes: ['NamespaceTerminating'],
    });
    expect(isNamespaceTerminating(err)).toBe(true);
  });

  it('falls back to the body or the error message when the body is no Status, keeping what client-node was doing', () => {
    expect(apiError(new ApiException(404, 'Not Found', '404 page not found\n', {}))).toEqual({
      code: 404,
      message: '404 page not found',
      causes: [],
    });
    // KubernetesObjectApi prefixes the exception's message with what it was doing.
    const discovery = new ApiException(404, 'Unsuccessful HTTP Request', '404 page not found\n', { 'audit-id': 'a' });
    discovery.message = `Failed to fetch resource metadata for modelship.dev/v1alpha1/ModelServing: ${discovery.message}`;
    expect(apiError(discovery).message).toBe(
      'Failed to fetch resource metadata for modelship.dev/v1alpha1/ModelServing: 404 page not found',
    );
    const refused = new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', message: 'forbidden: RBAC' }), {});
    refused.message = `Failed to fetch resource metadata for v1/Pod: ${refused.message}`;
    expect(apiError(refused).message).toBe('Failed to fetch resource metadata for v1/Pod: forbidden: RBAC');
    expect(apiError(new Error('connect ECONNREFUSED'))).toEqual({ message: 'connect ECONNREFUSED', causes: [] });
    expect(apiError('odd')).toEqual({ message: 'odd', causes: [] });
    expect(apiError(undefined).causes).toEqual([]);
  });

  it('tells a terminating namespace from other refusals', () => {
    const forbidden = JSON.stringify({ kind: 'Status', message: 'forbidden: RBAC', reason: 'Forbidden', code: 403 });
    expect(isNamespaceTerminating(new ApiException(403, 'x', forbidden, {}))).toBe(false);
    expect(isNamespaceTerminating(new ApiException(409, 'x', terminating, {}))).toBe(false);
  });
});
