// Crash-safe writes (src/lib/atomic.ts): exclusive create never overwrites, atomic replace leaves no temp files.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { createFileExclusive, writeFileAtomic, tempNameFor } from '../../src/lib/atomic.js';
import { tempDir } from '../helpers.js';

describe('atomic file writes', () => {
  it('createFileExclusive creates a new file and returns true', async () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    assert.equal(await createFileExclusive(path, 'first'), true);
    assert.equal(readFileSync(path, 'utf8'), 'first');
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('createFileExclusive returns false on an existing file and leaves its content untouched', async () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    writeFileSync(path, 'original');
    const before = statSync(path);
    assert.equal(await createFileExclusive(path, 'intruder'), false);
    assert.equal(readFileSync(path, 'utf8'), 'original');
    assert.equal(statSync(path).ino, before.ino);
    assert.deepEqual(readdirSync(dir), ['f'], 'no temp file left behind');
  });

  it('racing createFileExclusive calls: exactly one wins, and its content is complete', async () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    const payloads = Array.from({ length: 20 }, (_, i) => `writer ${i} `.repeat(10_000));
    const results = await Promise.all(payloads.map((p) => createFileExclusive(path, p)));
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(readFileSync(path, 'utf8'), payloads[results.indexOf(true)]);
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('createFileExclusive fails (does not return false) when the directory is missing', async () => {
    await assert.rejects(createFileExclusive(join(tempDir(), 'no', 'such', 'f'), 'x'), { code: 'ENOENT' });
  });

  it('writeFileAtomic creates and replaces, leaving no temp files', async () => {
    const dir = tempDir();
    const path = join(dir, 'f');
    await writeFileAtomic(path, 'one');
    assert.equal(readFileSync(path, 'utf8'), 'one');
    await writeFileAtomic(path, Buffer.from('two, longer'));
    assert.equal(readFileSync(path, 'utf8'), 'two, longer');
    await Promise.all(Array.from({ length: 10 }, (_, i) => writeFileAtomic(path, `v${i}`)));
    assert.match(readFileSync(path, 'utf8'), /^v\d$/);
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('writeFileAtomic into a missing directory fails and leaves nothing', async () => {
    const dir = tempDir();
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(dir), []);
  });

  it('temp names are hidden, unique and in the same directory', () => {
    const path = join(tempDir(), 'target');
    const a = tempNameFor(path);
    const b = tempNameFor(path);
    assert.notEqual(a, b);
    assert.equal(dirname(a), dirname(path));
    assert.match(basename(a), new RegExp(`^\\.target\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
  });
});
