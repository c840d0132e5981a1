// Types for the part of s3rver (v3, CommonJS, untyped) that test/support/s3-server.ts uses.

declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  namespace S3rver {
    interface Options {
      address?: string;
      /** 0 picks an ephemeral port; read it from what run() resolves with. */
      port?: number;
      silent?: boolean;
      /** Where buckets and objects are stored on disk. */
      directory?: string;
      resetOnClose?: boolean;
      allowMismatchedSignatures?: boolean;
      /** Whether a non-IP Host header names a bucket (virtual-host addressing). */
      vhostBuckets?: boolean;
      configureBuckets?: Array<{ name: string; configs?: Array<string | Buffer> }>;
    }
  }

  class S3rver {
    constructor(options?: S3rver.Options);
    /** Starts listening and resolves with the bound address. */
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export = S3rver;
}
