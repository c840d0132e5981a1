// The stat cache: trusted only for unchanged stats, never for racy entries, and saved in a form that round-trips.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { utimesSync, writeFileSync } from 'node:fs';
import { StatCache, readWorkTree } from '../../src/workspace/worktree.js';
import { Workspace, WORKSPACE_FORMAT } from '../../src/workspace/workspace.js';
import { DEFAULT_CHUNKER } from '../../src/chunker.js';
import type { ScanEntry } from '../../src/workspace/scan.js';
import { tempDir } from '../helpers.js';

const settings = { chunker: DEFAULT_CHUNKER };

describe('stat cache', () => {
  const entry = (over: Partial<ScanEntry> = {}): ScanEntry => ({ path: 'a', type: 'file', mode: 0o644, size: 3, mtimeMs: 1000.25, ctimeMs: 1000.5, ino: 7, ...over });
  const cached = { size: 3, mtimeMs: 1000.25, ctimeMs: 1000.5, ino: 7, mode: 0o644, chunks: [{ id: 'a'.repeat(64), size: 3 }], stored: true };

  it('is trusted only when size, mtime, ctime, inode and mode all match', () => {
    const cache = new StatCache(new Map([['a', cached]]), 5000);
    assert.ok(cache.lookup(entry(), true));
    for (const change of [{ size: 4 }, { mtimeMs: 1000.26 }, { ctimeMs: 1001 }, { ino: 8 }, { mode: 0o755 }]) {
      assert.equal(cache.lookup(entry(change), true), undefined, JSON.stringify(change));
    }
  });

  it('never trusts a racy entry: one modified at or after the clock of the scan that recorded it', () => {
    // The file could have been written again within the same timestamp tick, with no visible stat change.
    assert.equal(new StatCache(new Map([['a', cached]]), 1000.25).lookup(entry(), true), undefined);
    assert.equal(new StatCache(new Map([['a', cached]]), 999).lookup(entry(), true), undefined);
    assert.ok(new StatCache(new Map([['a', cached]]), 1000.26).lookup(entry(), true));
  });

  it('does not offer hash-only entries to a commit, whose chunks may be missing from the store', () => {
    const cache = new StatCache(new Map([['a', { ...cached, stored: false }]]), 5000);
    assert.equal(cache.lookup(entry(), true), undefined);
    assert.ok(cache.lookup(entry(), false));
  });

  it('round-trips through its file, names with tabs, newlines and quotes included', async () => {
    const root = tempDir();
    const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree: 't', remote: null });
    const odd = 'we\tird\nna"me\\x';
    const cache = new StatCache(new Map([['a', cached], [odd, { ...cached, stored: false, chunks: [] }]]), 1234.5678);
    await cache.save(ws);
    const back = await StatCache.load(ws);
    assert.equal(back.clockMs, 1234.5678);
    assert.deepEqual(back.entries.get('a'), cached);
    assert.deepEqual(back.entries.get(odd), { ...cached, stored: false, chunks: [] });
  });

  it('re-reads a file whose mtime is not older than the scan clock, even with an unchanged stat', async () => {
    const root = tempDir();
    const ws = await Workspace.create(root, { format: WORKSPACE_FORMAT, tree: 't', remote: null });
    writeFileSync(join(root, 'old.txt'), 'old');
    writeFileSync(join(root, 'fresh.txt'), 'new');
    utimesSync(join(root, 'old.txt'), 1_000_000, 1_000_000);
    const future = Date.now() / 1000 + 3600;
    utimesSync(join(root, 'fresh.txt'), future, future);
    const first = await readWorkTree(ws, { settings });
    assert.equal(first.hashedFiles, 2);
    await first.cache.save(ws);
    const second = await readWorkTree(ws, { settings });
    assert.equal(second.hashedFiles, 1, 'only the racy file is read again');
    assert.equal(second.flat.get('fresh.txt')?.chunks?.length, 1);
  });
});
