// elton push: send a commit saved locally while the remote was unreachable or failing.
import { Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { push, type PushResult } from '../src/app/push.js';

export default class Push extends EltonCommand {
  static summary = 'Send the pending commit (saved while the remote was unreachable or failing) and have its version issued.';
  static description = `Sends only the objects the remote (master or bucket) lacks, then issues the version. With nothing pending, does nothing.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> push', '<%= config.bin %> push --force --json'];
  static flags = { force: Flags.boolean({ description: 'record the pending commit even if the tree moved on meanwhile (with its true parent)' }) };

  async run(): Promise<PushResult> {
    const { flags } = await this.parse(Push);
    const r = await push({ force: flags.force }, await this.deps());
    this.log(r.pushed ? `${r.ref}: pushed (${r.transfer.requests} requests)` : 'nothing to push');
    return r;
  }
}
