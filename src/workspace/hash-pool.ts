// Spreads hashing over worker threads when the work is big enough to repay their start-up.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { FileHasher, toHashError, type HashError, type HashResult, type HashSettings } from './hasher.js';
import type { WorkerJob, WorkerReply } from './hash-worker.js';

export interface HashTask { abs: string; size: number }

export interface HashCallbacks {
  /** Called in order of arrival; the pool waits for it, which bounds memory when the sink is slow. */
  onObject(id: string, data: Buffer): Promise<void> | void;
  onFile(index: number, result: HashResult): void;
}

export class HashFailure extends Error {
  constructor(readonly task: HashTask, readonly error: HashError) {
    super(error.message);
  }
}

/** Below this much data, a worker's start-up (~40 ms) costs more than it saves. */
const INLINE_BYTES = 24 * 1024 * 1024;
const BATCH_BYTES = 8 * 1024 * 1024;
const BATCH_FILES = 256;

export async function hashFiles(tasks: HashTask[], settings: HashSettings, known: Set<string>, cb: HashCallbacks): Promise<void> {
  const total = tasks.reduce((n, t) => n + t.size, 0);
  const workers = Math.min(availableParallelism(), 4);
  if (total < INLINE_BYTES || workers < 2) return hashInline(tasks, settings, known, cb);
  return hashInWorkers(tasks, settings, known, cb, workers);
}

async function hashInline(tasks: HashTask[], settings: HashSettings, known: Set<string>, cb: HashCallbacks): Promise<void> {
  const hasher = new FileHasher(settings, known);
  for (let i = 0; i < tasks.length; i++) {
    const objects: Array<[string, Buffer]> = [];
    let result: HashResult;
    try {
      result = hasher.hash(tasks[i].abs, (id, data) => objects.push([id, data]));
    } catch (err) {
      throw new HashFailure(tasks[i], toHashError(err));
    }
    for (const [id, data] of objects) await cb.onObject(id, data);
    cb.onFile(i, result);
  }
}

function makeBatches(tasks: HashTask[]): number[][] {
  const order = tasks.map((_, i) => i).sort((a, b) => tasks[b].size - tasks[a].size);
  const batches: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const i of order) {
    current.push(i);
    bytes += tasks[i].size;
    if (bytes >= BATCH_BYTES || current.length >= BATCH_FILES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
  }
  if (current.length) batches.push(current);
  return batches;
}

function hashInWorkers(tasks: HashTask[], settings: HashSettings, known: Set<string>, cb: HashCallbacks, count: number): Promise<void> {
  const batches = makeBatches(tasks);
  const pool: Worker[] = [];
  let next = 0;
  let finished = 0;
  let chain: Promise<void> = Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      for (const w of pool) void w.terminate();
      reject(err);
    };
    const dispatch = (w: Worker) => {
      if (next >= batches.length) return;
      const batch = next++;
      const job: WorkerJob = { batch, paths: batches[batch].map((i) => tasks[i].abs) };
      w.postMessage(job);
    };
    const knownList = [...known];
    for (let k = 0; k < Math.min(count, batches.length); k++) {
      const w = new Worker(new URL('./hash-worker.js', import.meta.url), { workerData: { settings, known: knownList } });
      pool.push(w);
      w.on('error', fail);
      w.on('message', (msg: WorkerReply) => {
        // Replies are applied through one promise chain, so objects reach the sink in order
        // and a file is reported only after all its objects were accepted.
        chain = chain.then(async () => {
          if (failed) return;
          if (msg.kind === 'objects') {
            const blob = Buffer.from(msg.blob.buffer, msg.blob.byteOffset, msg.blob.byteLength);
            for (let j = 0, at = 0; j < msg.ids.length; at += msg.lengths[j], j++) {
              await cb.onObject(msg.ids[j], blob.subarray(at, at + msg.lengths[j]));
            }
          } else {
            msg.results.forEach(({ result, error }, k) => {
              const index = batches[msg.batch][k];
              if (error) throw new HashFailure(tasks[index], error);
              cb.onFile(index, result!);
            });
            dispatch(w);
            if (++finished === batches.length) {
              for (const p of pool) void p.terminate();
              resolve();
            }
          }
        }).catch(fail);
      });
      dispatch(w);
    }
    if (batches.length === 0) resolve();
  });
}
