import { describe, expect, it } from 'vitest';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { dependenciesCondition, dependencyTargets, dependents, findCycle } from '../../operator/controller/dependencies.ts';

function ms(
  name: string,
  deps: [string, string][] = [],
  ready?: { status: 'True' | 'False'; reason: string; message: string },
): ModelServing {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name, namespace: 'ml', generation: 1 },
    spec: {
      bundle: { uri: `s3://models/${name}.zip` },
      replicas: 1,
      ...(deps.length ? { dependencies: deps.map(([n, m]) => ({ name: n, modelServing: m })) } : {}),
    },
    ...(ready ? { status: { conditions: [{ type: 'Ready', lastTransitionTime: '2026-01-01T00:00:00Z', ...ready }] } } : {}),
  } as ModelServing;
}
const READY = { status: 'True' as const, reason: 'Available', message: '1/1 replicas ready' };
const lookupIn =
  (...all: ModelServing[]) =>
  (name: string) =>
    all.find((m) => m.metadata.name === name);

describe('dependencies', () => {
  it('hands the runtime each Service at its cluster DNS name (REST), by the name the bundle uses', () => {
    expect(
      JSON.parse(
        dependencyTargets(
          ms('ens', [
            ['svm', 'svm-clf'],
            ['logistic', 'lr'],
          ]),
        ) as string,
      ),
    ).toEqual({
      svm: { url: 'http://svm-clf.ml.svc.cluster.local', model: 'svm-clf', modelServing: 'svm-clf' },
      logistic: { url: 'http://lr.ml.svc.cluster.local', model: 'lr', modelServing: 'lr' },
    });
    expect(dependencyTargets(ms('alone'))).toBeUndefined();
  });

  it('DependenciesReady follows the members: missing and failing ones named with their reasons', () => {
    const ens = ms('ens', [
      ['svm', 'svm-clf'],
      ['logistic', 'lr'],
    ]);
    expect(dependenciesCondition(ens, lookupIn(ms('svm-clf', [], READY), ms('lr', [], READY)))).toEqual({
      status: 'True',
      reason: 'AllReady',
      message: 'svm-clf, lr Ready',
    });
    const broken = ms('lr', [], { status: 'False', reason: 'MS_ERR_PLUGIN_LOAD', message: 'cannot load model.joblib' });
    expect(dependenciesCondition(ens, lookupIn(ms('svm-clf', [], READY), broken))).toEqual({
      status: 'False',
      reason: 'DependencyNotReady',
      message: 'logistic: ModelServing lr is not Ready (MS_ERR_PLUGIN_LOAD: cannot load model.joblib)',
    });
    expect(dependenciesCondition(ens, lookupIn(broken))).toEqual({
      status: 'False',
      reason: 'DependencyMissing',
      message: 'svm: ModelServing svm-clf not found; logistic: ModelServing lr is not Ready (MS_ERR_PLUGIN_LOAD: cannot load model.joblib)',
    });
    expect(dependenciesCondition(ms('alone'), lookupIn())).toBeUndefined();
    const zero = ms('svm-clf', [], { status: 'True', reason: 'ScaledToZero', message: 'scaled to zero replicas' });
    expect(dependenciesCondition(ens, lookupIn(zero, ms('lr', [], READY)))?.message).toBe(
      'svm: ModelServing svm-clf has no replicas (scaled to zero)',
    );
  });

  it('finds a cycle, through any depth or to itself, and says so instead of looping', () => {
    const a = ms('a', [['b', 'b']]);
    const b = ms('b', [['c', 'c']]);
    const c = ms('c', [['a', 'a']]);
    expect(findCycle(a, lookupIn(a, b, c))).toEqual(['a', 'b', 'c', 'a']);
    expect(dependenciesCondition(a, lookupIn(a, b, c))).toMatchObject({
      status: 'False',
      reason: 'DependencyCycle',
      message: 'the dependencies form a cycle: a → b → c → a; a call would come back to this model',
    });
    expect(findCycle(ms('self', [['me', 'self']]), lookupIn())).toEqual(['self', 'self']);
    // A diamond is not a cycle.
    const top = ms('top', [
      ['l', 'l'],
      ['r', 'r'],
    ]);
    expect(findCycle(top, lookupIn(top, ms('l', [['x', 'x']]), ms('r', [['x', 'x']]), ms('x')))).toBeUndefined();
  });

  it('lists the dependents of a ModelServing (their status follows its)', () => {
    const all = [ms('ens', [['svm', 'svm-clf']]), ms('other', [['lr', 'lr']]), ms('svm-clf')];
    expect(dependents(all, 'svm-clf').map((m) => m.metadata.name)).toEqual(['ens']);
  });
});
