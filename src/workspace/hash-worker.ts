// Worker thread entry: hashes and encodes batches of files for the hash pool.

import { parentPort, workerData } from 'node:worker_threads';
import { FileHasher, toHashError, type HashSettings } from './hasher.js';

export interface WorkerInit { settings: HashSettings; known: string[] }
export interface WorkerJob { batch: number; paths: string[] }
export type WorkerReply =
  | { kind: 'objects'; ids: string[]; data: Buffer[] }
  | { kind: 'file'; batch: number; index: number; result?: ReturnType<FileHasher['hash']>; error?: ReturnType<typeof toHashError> }
  | { kind: 'done'; batch: number };

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
    const reply: WorkerReply = { kind: 'objects', ids, data };
    port.postMessage(reply, data.map((d) => d.buffer as ArrayBuffer));
    ids = [];
    data = [];
    bytes = 0;
  };
  job.paths.forEach((path, index) => {
    let reply: WorkerReply;
    try {
      const result = hasher.hash(path, (id, d) => {
        // Transfer needs a buffer that owns its whole ArrayBuffer; small ones share Node's pool.
        const own = d.byteOffset === 0 && d.buffer.byteLength === d.length ? d : Buffer.from(new Uint8Array(d));
        ids.push(id);
        data.push(own);
        bytes += own.length;
        if (bytes >= FLUSH_BYTES) flush();
      });
      reply = { kind: 'file', batch: job.batch, index, result };
    } catch (err) {
      reply = { kind: 'file', batch: job.batch, index, error: toHashError(err) };
    }
    flush();
    port.postMessage(reply);
  });
  port.postMessage({ kind: 'done', batch: job.batch } satisfies WorkerReply);
});
