import { homedir } from 'node:os';
import { join } from 'node:path';

/** Root of the build cache: `$MODELSHIP_CACHE`, or `~/.cache/modelship`. */
export function cacheRoot(): string {
  return process.env.MODELSHIP_CACHE || join(homedir(), '.cache', 'modelship');
}

/** Where one component at one version is built to. */
export function componentDir(component: string, version: string): string {
  return join(cacheRoot(), 'components', `${component}-${version}`);
}
