// The OIP v2 and health protos, loaded once for the gRPC server and for clients (the CLI, tests).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));

export interface OipPackage {
  inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
}

let loaded: OipPackage | undefined;

/** snake_case fields as in the proto, int64 as numbers, enums as names, defaults filled in. */
export function oipPackage(): OipPackage {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(['grpc_predict_v2.proto', 'health.proto'], {
      includeDirs: [PROTO_DIR],
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: false,
    }),
  ) as unknown as OipPackage;
  return loaded;
}
