// PURE: spec.dependencies → where the runtime reaches each one (MODELSHIP_DEPENDENCIES), and the
// DependenciesReady condition from the dependencies' own Ready (missing, failing, or a cycle, named).
import type { ModelServing } from '../../crds/modelserving.schema.ts';

export interface DependencyState {
  status: 'True' | 'False';
  reason: 'AllReady' | 'DependencyMissing' | 'DependencyNotReady' | 'DependencyCycle';
  message: string;
}

/** The runtime's MODELSHIP_DEPENDENCIES: each name → its Service's REST address and model name. */
export function dependencyTargets(ms: ModelServing, clusterDomain = 'cluster.local'): string | undefined {
  const deps = ms.spec.dependencies ?? [];
  if (deps.length === 0) return undefined;
  const ns = ms.metadata.namespace;
  const targets: Record<string, { url: string; model: string; modelServing: string }> = {};
  for (const d of deps) {
    // The REST port: keep-alive HTTP/1.1 costs less per call than gRPC on this runtime (bench:runtime).
    targets[d.name] = { url: `http://${d.modelServing}.${ns}.svc.${clusterDomain}`, model: d.modelServing, modelServing: d.modelServing };
  }
  return JSON.stringify(targets);
}

/** A dependency cycle through `ms`, as names (`a → b → a`), if there is one. */
export function findCycle(ms: ModelServing, lookup: (name: string) => ModelServing | undefined): string[] | undefined {
  const start = ms.metadata.name;
  const path: string[] = [start];
  const seen = new Set<string>();
  const walk = (m: ModelServing): string[] | undefined => {
    for (const d of m.spec.dependencies ?? []) {
      if (d.modelServing === start) return [...path, start];
      if (seen.has(d.modelServing)) continue;
      seen.add(d.modelServing);
      const next = lookup(d.modelServing);
      if (!next) continue;
      path.push(d.modelServing);
      const found = walk(next);
      if (found) return found;
      path.pop();
    }
    return undefined;
  };
  return walk(ms);
}

/** DependenciesReady; undefined when there are no dependencies. */
export function dependenciesCondition(ms: ModelServing, lookup: (name: string) => ModelServing | undefined): DependencyState | undefined {
  const deps = ms.spec.dependencies ?? [];
  if (deps.length === 0) return undefined;
  const cycle = findCycle(ms, lookup);
  if (cycle) {
    return {
      status: 'False',
      reason: 'DependencyCycle',
      message: `the dependencies form a cycle: ${cycle.join(' → ')}; a call would come back to this model`,
    };
  }
  const missing: string[] = [];
  const failing: string[] = [];
  for (const d of deps) {
    const m = lookup(d.modelServing);
    if (!m) {
      missing.push(`${d.name}: ModelServing ${d.modelServing} not found`);
      continue;
    }
    const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
    // Ready with no replica at all (ScaledToZero) serves nobody: a call to it is refused.
    if (ready?.status === 'True' && ready.reason === 'ScaledToZero') {
      failing.push(`${d.name}: ModelServing ${d.modelServing} has no replicas (scaled to zero)`);
    } else if (ready?.status !== 'True') {
      const why = ready ? `${ready.reason}: ${ready.message}` : 'no status yet';
      failing.push(`${d.name}: ModelServing ${d.modelServing} is not Ready (${why})`);
    }
  }
  if (missing.length) return { status: 'False', reason: 'DependencyMissing', message: [...missing, ...failing].join('; ') };
  if (failing.length) return { status: 'False', reason: 'DependencyNotReady', message: failing.join('; ') };
  return { status: 'True', reason: 'AllReady', message: `${deps.map((d) => d.modelServing).join(', ')} Ready` };
}

/** The ModelServings in `all` that depend on `name` (their status follows its). */
export function dependents(all: ModelServing[], name: string): ModelServing[] {
  return all.filter((m) => m.spec.dependencies?.some((d) => d.modelServing === name));
}
