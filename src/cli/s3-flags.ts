// Flags that set an s3:// remote's connection settings; they are saved in the remote URL's query string.
import { Flags } from '@oclif/core';
import type { S3Settings } from '../remote/s3-client.js';

export const s3Flags = {
  endpoint: Flags.string({ description: 'S3: endpoint URL of an S3-compatible store (MinIO, Ceph, R2...); default: AWS', helpGroup: 'S3' }),
  region: Flags.string({ description: 'S3: region (default: AWS_REGION, the profile, or us-east-1 for custom endpoints)', helpGroup: 'S3' }),
  'path-style': Flags.boolean({ description: 'S3: path-style addressing (default: on with --endpoint, off for AWS)', allowNo: true, helpGroup: 'S3' }),
  'storage-class': Flags.string({ description: 'S3: storage class of data packs, e.g. STANDARD_IA (metadata stays STANDARD)', helpGroup: 'S3' }),
};

export function s3Settings(flags: { endpoint?: string; region?: string; 'path-style'?: boolean; 'storage-class'?: string }): S3Settings {
  return { endpoint: flags.endpoint, region: flags.region, pathStyle: flags['path-style'], storageClass: flags['storage-class'] };
}
