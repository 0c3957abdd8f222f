// What a container says when it ends: the runtime writes `MS_ERR_<CODE>: message` to its termination log (the
// kubelet reports it in the container's terminated state), batch pods a JSON report. Pure.
import type { V1ContainerStateTerminated } from '@kubernetes/client-node';

/** A termination message of the form `MS_ERR_…: message`, as its code and message; undefined for any other text. */
export function codedMessage(text: string): { code: string; message: string } | undefined {
  const m = /^(MS_ERR_[A-Z0-9_]+):\s*([\s\S]*)$/.exec(text.trim());
  return m ? { code: m[1] as string, message: (m[2] as string).trim() } : undefined;
}

/** The last line of `text` as a JSON object, or undefined. */
function lastJson(text: string): Record<string, unknown> | undefined {
  const last = text.trim().split('\n').at(-1)?.trim() ?? '';
  if (!last.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(last);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A log line of the runtime's logger (pino: level, msg), as opposed to a report. */
const isLogLine = (value: Record<string, unknown>) => 'level' in value || 'msg' in value;

/** The report a container wrote to its termination log: a JSON object on the last line, not a log line. */
export function jsonReport(terminated: V1ContainerStateTerminated | undefined): Record<string, unknown> | undefined {
  const value = lastJson(terminated?.message ?? '');
  return value && !isLogLine(value) ? value : undefined;
}

/**
 * What the last line of a log tail says (the message of a container that failed without writing its termination
 * log, with FallbackToLogsOnError): a JSON log line's code and error or message, or the line as it is.
 */
export function lastLogLine(text: string): { code?: string; message: string } {
  const value = lastJson(text);
  if (!value || !isLogLine(value)) return { message: text.trim().split('\n').at(-1)?.trim() ?? '' };
  const code = typeof value.code === 'string' && value.code.startsWith('MS_ERR_') ? value.code : undefined;
  const err = typeof value.err === 'string' ? value.err : (value.err as { message?: unknown } | undefined)?.message;
  const message = [value.msg, err].filter((part) => typeof part === 'string' && part).join(': ');
  return { ...(code ? { code } : {}), message };
}
