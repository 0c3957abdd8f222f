// S3 settings for the CLI: flags first, then modelship's variables, then the AWS ones.
import { ENV } from '../runtime/contract.ts';
import type { S3Settings } from '../runtime/bundle/fetch.ts';

export interface S3Flags {
  endpoint?: string;
  region?: string;
}

export function s3Settings(flags: S3Flags, env: NodeJS.ProcessEnv = process.env): S3Settings {
  const s: S3Settings = { region: flags.region ?? env[ENV.s3Region] ?? env.AWS_REGION ?? 'us-east-1' };
  const endpoint = flags.endpoint ?? env[ENV.s3Endpoint] ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  if (endpoint) s.endpoint = endpoint;
  const accessKey = env[ENV.s3AccessKey] ?? env.AWS_ACCESS_KEY_ID;
  const secretKey = env[ENV.s3SecretKey] ?? env.AWS_SECRET_ACCESS_KEY;
  if (accessKey) s.accessKey = accessKey;
  if (secretKey) s.secretKey = secretKey;
  return s;
}
