// Where kube-proxy would send a Service's traffic: the ready endpoints of its EndpointSlices. Pure.
import type { V1EndpointSlice } from '@kubernetes/client-node';

type Slice = Pick<V1EndpointSlice, 'ports' | 'endpoints'>;

/** `http://<address>:<port>` of every ready endpoint (its port named `name`, default http), sorted. */
export function readyEndpointUrls(slices: Slice[], name = 'http'): string[] {
  const out: string[] = [];
  for (const s of slices) {
    const port = (s.ports?.find((p) => p.name === name) ?? s.ports?.[0])?.port ?? 8080;
    for (const e of s.endpoints ?? []) if (e.conditions?.ready) for (const a of e.addresses) out.push(`http://${a}:${port}`);
  }
  return out.sort();
}
