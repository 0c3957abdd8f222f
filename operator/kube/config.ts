// A KubeConfig whose API clients reuse connections. client-node builds a new undici Agent (a new connection
// pool, so a new TLS handshake) for every request; under load that handshake work dominated the operator's
// CPU profile. This keeps one dispatcher per KubeConfig: the cluster and credentials of a running operator do
// not change (a token-based user still sends its current token per request, in a header).
import { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (this: KubeConfig, ...args: unknown[]) => unknown;

export class PooledKubeConfig extends KubeConfig {
  private pooledDispatcher: unknown;

  constructor() {
    super();
    const original = (KubeConfig.prototype as unknown as { createDispatcher: CreateDispatcher }).createDispatcher;
    (this as unknown as { createDispatcher: CreateDispatcher }).createDispatcher = (...args: unknown[]) => {
      this.pooledDispatcher ??= original.apply(this, args);
      return this.pooledDispatcher;
    };
  }
}
