// What the key commands share: the --store flag and the listing of wrappings.
import { Flags } from '@oclif/core';
import type { KeyListing } from '../app/key.js';

export const storeFlag = { store: Flags.string({ description: 'a store: a directory, s3://BUCKET/PREFIX or a master URL (default: the workspace\'s store)' }) };

export function printWrappings(log: (line: string) => void, k: KeyListing): void {
  const writers = k.wrappings.filter((w) => w.source === 'writer').length;
  log(`${k.store}: ${k.wrappings.length - writers} wrapping(s) of the repository key${writers ? `, ${writers} write-only host(s)` : ''}`);
  for (const w of k.wrappings) log(`  ${w.id}  ${w.source.padEnd(10)}  ${w.created}  ${w.detail}`);
}
