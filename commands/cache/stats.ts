// elton cache stats: what the user-wide object cache holds, and what it has saved.
import { EltonCommand, EXIT_CODE_HELP, human } from '../../src/cli/base.js';
import { stats } from '../../src/app/lazy.js';
import type { CacheStats } from '../../src/store/user-cache.js';

export default class CacheStatsCommand extends EltonCommand {
  static summary = 'Show the user-wide object cache: its size, its contents, and the traffic it saved per remote.';
  static description = `The cache lives in $ELTON_CACHE, else $XDG_CACHE_HOME/elton, else ~/.cache/elton; every workspace, mount and gateway of the user shares it. "fetched" counts objects that came over the network, "cached" those found in the cache instead. See docs/lazy.md.\n\n${EXIT_CODE_HELP}`;

  async run(): Promise<CacheStats> {
    await this.parse(CacheStatsCommand);
    const s = await stats();
    this.log(`${s.path}: ${human(s.bytes)} in ${s.objects} objects (${s.packs} packs), ${s.remotes} remote(s) seen`);
    if (s.newestUse) this.log(`used from ${s.oldestUse} to ${s.newestUse}`);
    for (const t of s.traffic) {
      const saved = t.cached.bytes + t.fetched.bytes ? (100 * t.cached.bytes / (t.cached.bytes + t.fetched.bytes)).toFixed(1) : '0.0';
      this.log(`  ${t.remote}: ${t.runs} runs, ${t.transfer.requests} requests, ${human(t.transfer.bytesDown)} down, ${human(t.transfer.bytesUp)} up; fetched ${t.fetched.objects} objects (${human(t.fetched.bytes)}), from cache ${t.cached.objects} (${human(t.cached.bytes)}, ${saved}%)`);
    }
    return s;
  }
}
