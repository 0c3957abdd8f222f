import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Admin, Consumer } from '@platformatic/kafka';
import { ComponentStartError, type ProcessRecord, startProcess } from './process.ts';

/** True when the broker answers a metadata request (the broker is up and the KRaft quorum has a leader). */
export async function kafkaMetadataAnswered(bootstrapServers: string[]): Promise<boolean> {
  const admin = new Admin({
    clientId: 'modelship-env-probe',
    bootstrapBrokers: bootstrapServers,
    connectTimeout: 2000,
    requestTimeout: 3000,
    retries: 0,
  });
  try {
    const md = await admin.metadata({ topics: [] });
    return md.brokers.size > 0;
  } finally {
    await admin.close().catch(() => {});
  }
}

export interface ConsumedRecord {
  key: string;
  value: string;
  partition: number;
  offset: bigint;
}

/**
 * Reads a topic from the beginning until `count` records arrived (or `count(records)` says enough) or
 * `timeoutMs` passed, whichever is first, with a consumer group of its own. To show that nothing (more)
 * arrives, ask for more than expected and let the time run out.
 */
export async function readTopic(
  bootstrapServers: string[],
  topic: string,
  count: number | ((got: ConsumedRecord[]) => boolean),
  timeoutMs = 20_000,
): Promise<ConsumedRecord[]> {
  const enough = typeof count === 'number' ? (got: ConsumedRecord[]) => got.length >= count : count;
  const consumer = new Consumer({
    clientId: 'modelship-test-reader',
    groupId: `modelship-test-${randomBytes(6).toString('hex')}`,
    bootstrapBrokers: bootstrapServers,
    maxWaitTime: 200,
  });
  const out: ConsumedRecord[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const timer = setTimeout(() => void stream.close(), timeoutMs);
    try {
      for await (const m of stream) {
        out.push({ key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', partition: m.partition, offset: m.offset });
        if (enough(out)) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => {});
    }
  } finally {
    await consumer.close(true).catch(() => {});
  }
  return out;
}

export interface KafkaStartOptions {
  /** Directory for the broker's config, data (`kafka/`) and log (`logs/kafka.log`). */
  root: string;
  kafkaLibDir: string;
  port: number;
  controllerPort: number;
  /**
   * A second listener for the real node's pods: bound on 127.0.0.1 at `port`, advertised at `advertise`
   * (the node's address, where a relay carries it back here). With `sasl`, it takes only clients that
   * authenticate (SASL PLAIN as that user), as a shared cluster's Kafka would: code in a pod without the
   * credentials cannot produce.
   */
  node?: { port: number; advertise: string; sasl?: { username: string; password: string } };
}

function javaOpts(logConfig: string): string[] {
  return [
    '-Xms256m',
    '-Xmx768m',
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${logConfig}`,
    '-Dkafka.logs.dir=.',
  ];
}

/**
 * Starts a one-node KRaft Kafka (broker and controller) on loopback. Formats its storage the first time;
 * called again with the same options after a stop, it restarts the same broker with its data (as after an
 * outage). Does not wait for it: use waitReady with kafkaMetadataAnswered.
 */
export async function startKafka(o: KafkaStartOptions): Promise<ProcessRecord> {
  const data = join(o.root, 'kafka');
  const logs = join(o.root, 'logs');
  await mkdir(data, { recursive: true });
  await mkdir(logs, { recursive: true });
  const props = join(o.root, 'kafka-server.properties');
  const log4j = join(o.root, 'kafka-log4j.properties');
  await writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${o.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}${o.node ? `,NODE://127.0.0.1:${o.node.port}` : ''}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${o.port}${o.node ? `,NODE://${o.node.advertise}` : ''}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${o.node ? `,NODE:${o.node.sasl ? 'SASL_PLAINTEXT' : 'PLAINTEXT'}` : ''}`,
      ...(o.node?.sasl
        ? [
            'listener.name.node.sasl.enabled.mechanisms=PLAIN',
            `listener.name.node.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${o.node.sasl.username}="${o.node.sasl.password}";`,
          ]
        : []),
      `log.dirs=${data}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // Topics are made on purpose (the operator's CREATE), never by a producer's typo.
      'auto.create.topics.enable=false',
      'delete.topic.enable=true',
      '',
    ].join('\n'),
  );
  await writeFile(
    log4j,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.logger.kafka=INFO',
      'log4j.logger.org.apache.kafka=WARN',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
  const classPath = `${o.kafkaLibDir}/*`;
  // KRaft cluster ids are 16 random bytes in URL-safe base64 without padding. A restart keeps its data
  // directory, formatted with the first id, as it is.
  const formatted = existsSync(join(data, 'meta.properties'));
  const format = formatted
    ? { status: 0, stdout: '', stderr: '' }
    : spawnSync(
        'java',
        [...javaOpts(log4j), '-cp', classPath, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', props, '--ignore-formatted'],
        { encoding: 'utf8', cwd: o.root },
      );
  if (format.status !== 0) {
    throw new ComponentStartError(
      'kafka',
      ['java', '-cp', classPath, 'kafka.tools.StorageTool', 'format', '-c', props],
      '(stdout/stderr below)',
      `storage format exited with ${format.status}`,
      `${format.stdout}\n${format.stderr}`.trim().split('\n').slice(-30).join('\n'),
    );
  }
  return startProcess({
    name: 'kafka',
    command: 'java',
    args: [...javaOpts(log4j), '-cp', classPath, 'kafka.Kafka', props],
    cwd: o.root,
    logFile: join(logs, 'kafka.log'),
    dataDir: data,
  });
}

/**
 * A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, never starting with '-' (the
 * storage tool would take it for an option and fail, one start in 64; Kafka's own Uuid avoids it too).
 */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
