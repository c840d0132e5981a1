// elton cache trim: shrink the user-wide object cache, least recently used first.
import { Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../../src/cli/base.js';
import { trim } from '../../src/app/lazy.js';
import type { TrimResult } from '../../src/store/user-cache.js';

export default class CacheTrim extends EltonCommand {
  static summary = 'Trim the user-wide object cache to a size, removing what was least recently used.';
  static description = `Removes whole packs, least recently used first. Safe while other elton processes run: one reading a removed pack finishes from its open file, and a later read fetches the objects again. Commits waiting for a push are never here (they stay in the workspace), so nothing is lost. See docs/lazy.md.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> cache trim --max-size 10G', '<%= config.bin %> cache trim --max-size 0'];
  static flags = {
    'max-size': Flags.string({ description: 'the most the cache may hold afterwards: bytes, or with K, M, G, T (powers of 1024)', required: true }),
  };

  async run(): Promise<TrimResult> {
    const { flags } = await this.parse(CacheTrim);
    const r = await trim(flags['max-size']);
    this.log(`${r.path}: ${human(r.before)} -> ${human(r.after)} (removed ${r.removedPacks} packs, ${human(r.removedBytes)})`);
    return r;
  }
}
