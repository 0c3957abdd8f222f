// Settings read from the environment that the runtime and the operator share: whole numbers and lists with
// errors naming the variable, and the Kafka connection settings (names in runtime/contract.ts). Pure.
import { ENV, KAFKA_SASL_MECHANISMS, type KafkaSaslMechanism } from '../runtime/contract.ts';
import { msError } from '../runtime/errors.ts';

export type Env = Record<string, string | undefined>;

export interface KafkaSettings {
  bootstrapServers: string[];
  tls: boolean;
  tlsCa: string | undefined;
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: string } | undefined;
}

const HOST_PORT = /^[^\s:,]+:\d{1,5}$/;

/** A whole number from the environment, or MS_ERR_CONFIG_INVALID naming the variable. */
export function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: `${name} must be a whole number in [${min}, ${max}], got ${JSON.stringify(raw)}` });
  }
  return n;
}

/** true or false (also 1/0, empty: `fallback`), or MS_ERR_CONFIG_INVALID naming the variable. */
export function bool(env: Env, name: string, fallback = false): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw msError('MS_ERR_CONFIG_INVALID', { detail: `${name} must be true or false, got ${JSON.stringify(raw)}` });
}

/** A comma-separated list, trimmed, without empty items. */
export function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function kafkaSettings(env: Env): KafkaSettings | undefined {
  const servers = list(env[ENV.kafkaBootstrapServers]);
  if (servers.length === 0) return undefined;
  for (const s of servers) {
    if (!HOST_PORT.test(s)) {
      throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.kafkaBootstrapServers}: ${JSON.stringify(s)} is not host:port` });
    }
  }
  const mechanism = env[ENV.kafkaSaslMechanism] || undefined;
  let sasl: KafkaSettings['sasl'];
  if (mechanism !== undefined) {
    if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      throw msError('MS_ERR_CONFIG_INVALID', {
        detail: `${ENV.kafkaSaslMechanism} must be one of ${KAFKA_SASL_MECHANISMS.join(', ')}, got ${JSON.stringify(mechanism)}`,
      });
    }
    const username = env[ENV.kafkaSaslUsername];
    const password = env[ENV.kafkaSaslPassword];
    if (!username || !password) {
      throw msError('MS_ERR_CONFIG_INVALID', {
        detail: `${ENV.kafkaSaslMechanism} is set but ${!username ? ENV.kafkaSaslUsername : ENV.kafkaSaslPassword} is empty`,
      });
    }
    sasl = { mechanism: mechanism as KafkaSaslMechanism, username, password };
  }
  return { bootstrapServers: servers, tls: env[ENV.kafkaTls] === 'true', tlsCa: env[ENV.kafkaTlsCa] || undefined, sasl };
}
