// A master's automatic replication: every version recorded is queued durably (in the same LMDB
// transaction that records it) and copied to the replica in the background, with backoff.
//
// One run copies every version of the queued trees that the replica lacks (the backup's own
// have/want exchange), so a burst of commits costs one run, and a run killed by a restart is
// simply made again: the queue is emptied only after the copy succeeded. At start, one run
// covers every tree, which also brings a replica up to date when replication is turned on late.

import { EltonError, notFound } from '../errors.js';
import { copyKeyring, copyVersions, type Origin } from '../backup/copy.js';
import { openForCopying } from '../store/open.js';
import type { FileStore } from '../store/file-store.js';
import type { CopyTarget } from '../store/store.js';
import type { MasterMeta } from './meta.js';

export interface ReplicationStatus {
  target: string;
  /** Versions recorded here and not yet confirmed at the replica. */
  queue: number;
  /** Seconds since the oldest queued version was recorded (0 when the queue is empty). */
  lagSeconds: number;
  running: boolean;
  /** Versions copied since this master started. */
  copied: number;
  lastSuccess: string | null;
  lastError: { time: string; code: string; message: string } | null;
  /** Failed runs in a row; the wait before the next one doubles with each. */
  failures: number;
  nextAttempt: string | null;
}

export type ReplicationEvent =
  | { type: 'copied'; versions: string[]; objects: number; bytes: number; seconds: number }
  | { type: 'failed'; code: string; message: string; retryInSeconds: number };

const BASE_DELAY_MS = Number(process.env.ELTON_REPLICATE_RETRY_MS ?? 1000);
const MAX_DELAY_MS = Number(process.env.ELTON_REPLICATE_MAX_RETRY_MS ?? 5 * 60_000);

export class Replicator {
  private target?: CopyTarget;
  private running?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private wanted = false;
  private keyringDirty = false;
  private closed = false;
  private copied = 0;
  private failures = 0;
  private lastSuccess: string | null = null;
  private lastError: ReplicationStatus['lastError'] = null;
  private nextAttempt: number | null = null;
  /** The first run covers every tree. */
  private everything = true;

  constructor(
    private readonly meta: MasterMeta,
    private readonly store: FileStore,
    readonly url: string,
    private readonly token: string | undefined,
    private readonly onEvent: (e: ReplicationEvent) => void = () => {},
  ) {
    meta.replicating = true;
  }

  /** Asks for a run: now if idle, after the current one if running, at the backoff's time if failing. */
  kick(): void {
    if (this.closed) return;
    this.wanted = true;
    if (this.running || this.timer) return;
    this.running = this.loop().finally(() => { this.running = undefined; });
  }

  private async loop(): Promise<void> {
    while (this.wanted && !this.closed) {
      this.wanted = false;
      try {
        await this.runOnce();
        this.failures = 0;
        this.nextAttempt = null;
      } catch (err) {
        this.failures++;
        const e = err instanceof EltonError ? err : new EltonError('E_INTERNAL', err instanceof Error ? err.message : String(err), 1);
        this.lastError = { time: new Date().toISOString(), code: e.code, message: e.message };
        await this.target?.close().catch(() => {});
        this.target = undefined;
        const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.failures - 1)) * (0.75 + Math.random() * 0.5);
        this.nextAttempt = Date.now() + delay;
        this.onEvent({ type: 'failed', code: e.code, message: e.message, retryInSeconds: Math.round(delay / 100) / 10 });
        if (!this.closed) this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, delay);
        return;
      }
    }
  }

  /** The keyring changed (a key command): the replica gets it on the next run, versions or not. */
  keyringChanged(): void {
    this.keyringDirty = true;
    this.kick();
  }

  private async runOnce(): Promise<void> {
    const t0 = Date.now();
    const queued = this.meta.queued();
    const keyringOnly = !queued.length && !this.everything;
    if (keyringOnly && !this.keyringDirty) return;
    // An encrypted repository's keyring goes to a new target before its config.
    const keyring = this.store.config.encryption ? (await this.store.readKeyringBytes())?.data : undefined;
    this.target ??= await openForCopying(this.url, this.store.config, this.token, false, keyring);
    this.keyringDirty = false;
    if (keyringOnly) {
      await copyKeyring(this.origin().direct, this.target);
      return;
    }
    const trees = this.everything ? undefined : [...new Set(queued.map((q) => q.tree))];
    const r = await copyVersions(this.origin(), this.target, { trees });
    if (r.problems.length) {
      const p = r.problems[0];
      throw new EltonError('E_CORRUPT', `${r.problems.length} object(s) could not be copied (${p.kind} ${p.id}: ${p.message})`, 7, 'run `elton verify` on this master');
    }
    this.everything = false;
    await this.meta.dequeue(queued);
    this.copied += r.copied.length;
    this.lastSuccess = new Date().toISOString();
    if (r.copied.length) this.onEvent({ type: 'copied', versions: r.copied, objects: r.objects, bytes: r.bytes, seconds: (Date.now() - t0) / 1000 });
  }

  /** The master's own store as a copy source: records from LMDB, objects from its packs. */
  private origin(): Origin {
    const { meta, store } = this;
    const readVersion = async (tree: string, version: number) => {
      const r = meta.readVersion(tree, version);
      if (!r) throw notFound(`version ${tree}@${version} on this master`);
      return r;
    };
    return {
      store: { config: store.config, codec: store.codec, readVersion, readObjects: (ids, onObject) => store.readObjects(ids, onObject) },
      direct: {
        url: store.url, config: store.config, transfer: store.transfer,
        lengths: (ids) => store.lengths(ids),
        readObjects: (ids, onObject) => store.readObjects(ids, onObject),
        listTrees: async () => meta.listTrees(),
        listVersions: async (tree) => meta.listVersionBytes(tree).map((v) => v.version),
        listIds: async () => meta.ids(),
        readKeyringBytes: () => store.readKeyringBytes(),
        writeKeyringBytes: async () => { throw new Error('internal: a replication source is read only'); },
      } as Origin['direct'],
    };
  }

  status(): ReplicationStatus {
    const queued = this.meta.queued();
    const oldest = queued.reduce((m, q) => Math.min(m, q.since), Infinity);
    return {
      target: this.url, queue: queued.length, lagSeconds: queued.length ? Math.round((Date.now() - oldest) / 1000) : 0,
      running: !!this.running, copied: this.copied, lastSuccess: this.lastSuccess, lastError: this.lastError,
      failures: this.failures, nextAttempt: this.nextAttempt ? new Date(this.nextAttempt).toISOString() : null,
    };
  }

  /** Stops after the run in flight (its queue entries stay until a run succeeds). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // A long copy is abandoned rather than waited for: its queue entries are still there at the next start.
    await Promise.race([this.running?.catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.target?.close().catch(() => {});
  }
}
