// What the key commands share: the --store flag and the listing of wrappings.
import { Flags } from '@oclif/core';
import type { KeyListing } from '../app/key.js';

export const storeFlag = { store: Flags.string({ description: 'a directory store (default: the workspace\'s store)' }) };

export function printWrappings(log: (line: string) => void, k: KeyListing): void {
  log(`${k.store}: ${k.wrappings.length} wrapping(s) of the repository key`);
  for (const w of k.wrappings) log(`  ${w.id}  ${w.source.padEnd(10)}  ${w.created}  ${w.detail}`);
}
