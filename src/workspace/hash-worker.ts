// Worker thread entry: hashes and encodes batches of files for the hash pool.

import { parentPort, workerData } from 'node:worker_threads';
import { FileHasher, toHashError, type HashSettings } from './hasher.js';

export interface WorkerInit { settings: HashSettings; known: string[] }
export interface WorkerJob { batch: number; paths: string[] }
export type WorkerReply =
  | { kind: 'objects'; ids: string[]; lengths: number[]; blob: Uint8Array }
  | { kind: 'done'; batch: number; results: Array<{ result?: ReturnType<FileHasher['hash']>; error?: ReturnType<typeof toHashError> }> };

const init = workerData as WorkerInit;
const hasher = new FileHasher(init.settings, new Set(init.known));
const port = parentPort!;
const FLUSH_BYTES = 8 * 1024 * 1024;

port.on('message', (job: WorkerJob) => {
  let ids: string[] = [];
  let data: Buffer[] = [];
  let bytes = 0;
  const flush = () => {
    if (!ids.length) return;
    // One standalone buffer per message, transferred rather than copied.
    const blob = Buffer.allocUnsafeSlow(bytes);
    let at = 0;
    for (const d of data) at += d.copy(blob, at);
    const reply: WorkerReply = { kind: 'objects', ids, lengths: data.map((d) => d.length), blob };
    port.postMessage(reply, [blob.buffer as ArrayBuffer]);
    ids = [];
    data = [];
    bytes = 0;
  };
  // One reply per batch, not per file: with 20,000 small files, messages cost more than hashing.
  const results: Extract<WorkerReply, { kind: 'done' }>['results'] = [];
  for (const path of job.paths) {
    try {
      results.push({
        result: hasher.hash(path, (id, d) => {
          ids.push(id);
          data.push(d);
          bytes += d.length;
          if (bytes >= FLUSH_BYTES) flush();
        }),
      });
    } catch (err) {
      results.push({ error: toHashError(err) });
    }
  }
  flush();
  port.postMessage({ kind: 'done', batch: job.batch, results } satisfies WorkerReply);
});
