// elton commit: snapshot the working tree as NAME@V.
import { Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { commit, type CommitResult } from '../src/app/commit.js';

export default class Commit extends EltonCommand {
  static summary = 'Snapshot the working tree as a new version NAME@V.';
  static description = `Reads only the files whose size, mtime, ctime or inode changed since the last commit or checkout, stores the chunks the store lacks, and has the store issue the next version. An unchanged tree makes no new version.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> commit -m "nightly results"', '<%= config.bin %> commit --json'];
  static flags = {
    message: Flags.string({ char: 'm', description: 'commit message' }),
    force: Flags.boolean({ description: 'record the commit even if the tree moved on since this workspace\'s base version' }),
  };

  async run(): Promise<CommitResult> {
    const { flags } = await this.parse(Commit);
    const r = await commit({ message: flags.message, force: flags.force }, await this.deps());
    if (r.unchanged) this.log(`nothing changed since ${r.ref}; no new version`);
    else if (r.pending) this.warning(`${r.pendingReason}\ncommit saved locally as pending (${r.files} files, ${human(r.bytes)}); run \`elton push\` to send it when the remote is back`);
    else this.log(`${r.ref}  ${r.files} files, ${human(r.bytes)}; ${r.newObjects} new objects, ${human(r.newBytes)} stored`);
    return r;
  }
}
