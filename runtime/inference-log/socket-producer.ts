// The runtime's side of the recorder sidecar: a KafkaProducer whose batches go over the pod's Unix socket to the
// recorder, which alone holds the Kafka credentials and produces. `send` resolves when the recorder has the
// batch acknowledged by the brokers; a socket that is not there yet (the sidecar starting) or goes away rejects,
// and the sink keeps the records and retries, as it does for a Kafka outage.
import { createConnection, type Socket } from 'node:net';
import { UnknownTopicError } from '../../common/kafka.ts';
import type { KafkaProducer } from './kafka.ts';
import { encodeBatch, type WireReply } from './recorder-wire.ts';
import type { OutgoingRecord } from './sink.ts';

export interface SocketProducerOptions {
  path: string;
  /** The recorder refused records (topics it does not allow): they are dropped, and counted here. */
  onRefused?: (count: number, topics: string[]) => void;
}

export function createSocketProducer(o: SocketProducerOptions): KafkaProducer {
  let socket: Socket | undefined;
  let connecting: Promise<Socket> | undefined;
  let next = 0;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const connect = (): Promise<Socket> => {
    if (socket) return Promise.resolve(socket);
    connecting ??= new Promise<Socket>((resolve, reject) => {
      const s = createConnection(o.path);
      let lines = '';
      s.setNoDelay?.(true);
      s.once('connect', () => {
        socket = s;
        connecting = undefined;
        resolve(s);
      });
      s.on('data', (b: Buffer) => {
        lines += b.toString('utf8');
        for (let nl = lines.indexOf('\n'); nl >= 0; nl = lines.indexOf('\n')) {
          let reply: WireReply;
          try {
            reply = JSON.parse(lines.slice(0, nl)) as WireReply;
          } catch {
            // Not the recorder talking (something else took the socket's place): drop the connection, and with it
            // every batch in flight, which the sink keeps and retries.
            s.destroy(new Error('the recorder socket answered something that is not a reply'));
            return;
          }
          lines = lines.slice(nl + 1);
          const p = pending.get(reply.id);
          if (!p) continue;
          pending.delete(reply.id);
          if (reply.ok) {
            if (reply.refused > 0) o.onRefused?.(reply.refused, reply.refusedTopics ?? []);
            p.resolve();
          } else p.reject(reply.unknownTopic !== undefined ? new UnknownTopicError(reply.unknownTopic) : new Error(reply.message));
        }
      });
      s.on('error', (err) => {
        if (!socket) {
          connecting = undefined;
          reject(new Error(`the recorder sidecar is not reachable at ${o.path}: ${err.message}`));
        }
      });
      s.on('close', () => {
        if (socket === s) socket = undefined;
        failAll(new Error('the connection to the recorder sidecar closed'));
      });
    });
    return connecting;
  };
  return {
    send: async (records: readonly OutgoingRecord[]) => {
      const s = await connect();
      const id = next++;
      const acked = new Promise<void>((resolve, reject) => pending.set(id, { resolve, reject }));
      s.write(encodeBatch({ id, records: records.map((r) => ({ topic: r.topic, key: r.key, value: r.value })) }));
      return acked;
    },
    close: async () => {
      socket?.end();
      socket = undefined;
    },
  };
}
