// elton log: the versions of a tree.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { log, type LogResult } from '../src/app/history.js';

export default class Log extends EltonCommand {
  static summary = 'List the versions of a tree, newest first.';
  static description = EXIT_CODE_HELP;
  static examples = ['<%= config.bin %> log', '<%= config.bin %> log photos -n 5'];
  static args = { tree: Args.string({ description: 'tree name (default: the workspace\'s)' }) };
  static flags = { limit: Flags.integer({ char: 'n', description: 'show at most this many versions', min: 1 }) };

  async run(): Promise<LogResult> {
    const { args, flags } = await this.parse(Log);
    const r = await log({ tree: args.tree, limit: flags.limit }, await this.deps());
    if (!r.versions.length) this.log(`${r.tree} has no versions yet`);
    for (const v of r.versions) {
      this.log(`${v.tree}@${v.version}  ${v.time}  ${v.author}@${v.host}  parent ${v.parent ?? '-'}${v.git ? `  git ${v.git.commit.slice(0, 12)}` : ''}${v.writer ? `  by write-only host ${v.writer}` : ''}\n    ${v.message || '(no message)'}`);
    }
    return r;
  }
}
