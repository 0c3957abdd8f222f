// What the CLI prints, captured per test: console.log lines in `out`, console.error lines in `err`.
import { afterEach, beforeEach, vi } from 'vitest';

export function captureConsole(): { out: string[]; err: string[] } {
  const seen = { out: [] as string[], err: [] as string[] };
  beforeEach(() => {
    seen.out.length = 0;
    seen.err.length = 0;
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void seen.out.push(a.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void seen.err.push(a.join(' ')));
  });
  afterEach(() => vi.restoreAllMocks());
  return seen;
}
