// What a container says when it ends: the runtime writes `MS_ERR_<CODE>: message` to its termination log (the
// kubelet reports it in the container's terminated state), batch pods a JSON report. Pure.
import type { V1ContainerStateTerminated } from '@kubernetes/client-node';

/** A termination message of the form `MS_ERR_…: message`, as its code and message; undefined for any other text. */
export function codedMessage(text: string): { code: string; message: string } | undefined {
  const m = /^(MS_ERR_[A-Z0-9_]+):\s*([\s\S]*)$/.exec(text.trim());
  return m ? { code: m[1] as string, message: (m[2] as string).trim() } : undefined;
}

/** A JSON object on the message's last line (a report; what came before it is log text), or undefined. */
export function jsonReport(terminated: V1ContainerStateTerminated | undefined): Record<string, unknown> | undefined {
  const lines = (terminated?.message ?? '').trim().split('\n');
  const last = lines.at(-1)?.trim() ?? '';
  if (!last.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(last);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
