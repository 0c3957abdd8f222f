// The overload benchmark's JS model (bench/overload.ts): every prediction keeps its thread busy for 5 ms, so it
// needs the worker-thread pool (MODELSHIP_WORKERS) to leave the server's event loop free.
export async function init() {}

export async function predict() {
  const end = performance.now() + 5;
  while (performance.now() < end) {
    // spin: CPU-bound work, as a model's would be
  }
  return { y: 1 };
}
