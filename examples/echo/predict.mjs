// The echo model: returns its input unchanged (the plugin contract's smallest example).
export async function init(bundlePath, ctx) {
  ctx.log.debug({ bundlePath }, 'echo ready');
}

export async function predict(input) {
  return input;
}
