// What a plugin may return besides its outputs: metrics and events, under the reserved keys `$metrics` and
// `$events` of predict()'s (or predictBatch()'s per-instance, or feedback()'s) result. Split off in the
// engine (in whatever thread runs the plugin); validated on the main thread. Pure.
//
//   return { label: 'setosa', $metrics: [{ name: 'accuracy', type: 'gauge', value: 0.97 }],
//            $events: [{ topic: 'iris-alerts', value: { drift: true } }] };

export const METRICS_KEY = '$metrics';
export const EVENTS_KEY = '$events';

/** Raw, as the plugin returned them; checked by validateMetric / validateEvent. */
export interface Signals {
  metrics: unknown[];
  events: unknown[];
}

export interface PluginMetric {
  name: string;
  type: 'gauge' | 'counter';
  value: number;
  help?: string;
}

export interface PluginEvent {
  topic: string;
  value: unknown;
  key?: string;
}

function asList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Takes `$metrics` / `$events` off a result, adding them to `into`. Returns the result without them (a
 * copy only when they were there).
 */
export function takeSignals(result: unknown, into: Signals): unknown {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return result;
  const r = result as Record<string, unknown>;
  if (!(METRICS_KEY in r) && !(EVENTS_KEY in r)) return result;
  const { [METRICS_KEY]: metrics, [EVENTS_KEY]: events, ...rest } = r;
  into.metrics.push(...asList(metrics));
  into.events.push(...asList(events));
  return rest;
}

export function hasSignals(s: Signals): boolean {
  return s.metrics.length > 0 || s.events.length > 0;
}

const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,99}$/;
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** A metric in the documented form, or why it is not. */
export function validateMetric(raw: unknown): PluginMetric | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'a metric must be an object {name, type, value}';
  const m = raw as Record<string, unknown>;
  if (typeof m.name !== 'string' || !METRIC_NAME.test(m.name)) {
    return `metric name ${JSON.stringify(m.name)} must be letters, digits and _ (not starting with a digit; at most 100)`;
  }
  const type = typeof m.type === 'string' ? m.type.toLowerCase() : m.type;
  if (type !== 'gauge' && type !== 'counter') return `metric ${m.name}: type must be gauge or counter, got ${JSON.stringify(m.type)}`;
  if (typeof m.value !== 'number' || !Number.isFinite(m.value)) return `metric ${m.name}: value must be a finite number`;
  if (type === 'counter' && m.value < 0) return `metric ${m.name}: a counter only goes up; value must be >= 0`;
  if (m.help !== undefined && typeof m.help !== 'string') return `metric ${m.name}: help must be a string`;
  return { name: m.name, type, value: m.value, ...(typeof m.help === 'string' ? { help: m.help.slice(0, 500) } : {}) };
}

/** An event in the documented form, or why it is not. Whether its topic is allowed is checked elsewhere. */
export function validateEvent(raw: unknown): PluginEvent | string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'an event must be an object {topic, value}';
  const e = raw as Record<string, unknown>;
  if (typeof e.topic !== 'string' || !TOPIC.test(e.topic)) return `event topic ${JSON.stringify(e.topic)} is not a Kafka topic name`;
  if (!('value' in e)) return `event for ${e.topic} has no value`;
  if (e.key !== undefined && (typeof e.key !== 'string' || e.key.length === 0 || e.key.length > 256)) {
    return `event for ${e.topic}: key must be a non-empty string of at most 256 characters`;
  }
  return { topic: e.topic, value: e.value, ...(typeof e.key === 'string' ? { key: e.key } : {}) };
}
