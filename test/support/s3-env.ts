/**
 * A real S3-compatible server for integration tests, with one bucket, and the standard AWS settings put in
 * process.env so in-process workers (and spawned ones) reach it as they would reach a real store.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { ensureBucket, type S3Server, startS3Server } from '../../infra/s3';

export interface TestS3 {
  server: S3Server;
  /** Stops the server and restores process.env. */
  stop(): Promise<void>;
}

export async function startTestS3(bucket: string): Promise<TestS3> {
  const saved = { ...process.env };
  const server = await startS3Server();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: server.endpoint,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: server.region,
    S3_FORCE_PATH_STYLE: 'true',
  });
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  await ensureBucket(client, bucket);
  client.destroy();
  return {
    server,
    async stop() {
      await server.stop();
      process.env = saved;
    },
  };
}
