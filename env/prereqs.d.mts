// Types of env/prereqs.mjs (plain JavaScript: it runs before the pinned Node and the npm packages are installed).
export interface Prerequisite {
  /** An absolute path, or a command looked up on PATH. */
  provides: string;
  /** The Debian package that provides it. */
  package: string;
  for: 'build' | 'realNode';
  why: string;
  /** A command that must also succeed. */
  probe?: string[];
}
export function prerequisites(): Prerequisite[];
export function missingPrerequisites(opts?: { realNode?: boolean }): Prerequisite[];
export function machineProblems(opts?: { realNode?: boolean }): string[];
export function installCommand(missing: Prerequisite[], sudo?: boolean): string;
