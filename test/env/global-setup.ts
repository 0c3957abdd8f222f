// vitest globalSetup for the integration project: reuse a healthy environment described by
// `.modelship/env.json`, or start one, and stop it afterwards only if this run started it.
import type { TestProject } from 'vitest/node';
import { down, type EnvInfo, ensureReadOnlyUser, isHealthy, readEnv, up } from '../../env/env.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    modelshipEnv: EnvInfo;
  }
}

export default async function setup(project: TestProject) {
  let info = await readEnv();
  let startedHere = false;
  if (info && (await isHealthy(info))) {
    process.stderr.write(`modelship env: reusing the running environment (${info.root})\n`);
    info = await ensureReadOnlyUser(info);
  } else {
    if (info) await down(info);
    info = await up();
    startedHere = true;
  }
  project.provide('modelshipEnv', info);
  const started = info;
  return async () => {
    if (startedHere && !process.env.MODELSHIP_KEEP_ENV) await down(started);
  };
}
