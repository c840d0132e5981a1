// elton master status: a running master's uptime, trees and replication queue.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { masterStatus, type MasterStatus } from '../../src/app/master.js';
import { DEFAULT_PORT } from '../../src/remote/wire.js';

export default class MasterStatusCommand extends EltonCommand {
  static summary = 'Show a running master\'s status: uptime, trees, and its replication (queue depth, lag, last error).';
  static description = `Asks the master (one request; token in ELTON_TOKEN). Replication is null unless the master runs with --replicate-to. See docs/backup.md.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> master status http://master:3586', '<%= config.bin %> master status http://master:3586 --json'];
  static args = { url: Args.string({ description: `the master (default http://127.0.0.1:${DEFAULT_PORT})`, required: false }) };

  async run(): Promise<MasterStatus> {
    const { args } = await this.parse(MasterStatusCommand);
    const s = await masterStatus(args.url ?? `http://127.0.0.1:${DEFAULT_PORT}`, await this.deps());
    this.log(`${s.url}: up ${s.uptimeSeconds} s, ${s.trees} trees`);
    const r = s.replication;
    if (!r) this.log('replication: off');
    else {
      this.log(`replication to ${r.target}: ${r.queue} queued, lag ${r.lagSeconds} s, ${r.copied} versions copied since start${r.running ? ', running' : ''}`);
      if (r.lastSuccess) this.log(`  last success ${r.lastSuccess}`);
      if (r.lastError) this.log(`  last error ${r.lastError.time}: ${r.lastError.code}: ${r.lastError.message}${r.failures ? ` (${r.failures} in a row, next attempt ${r.nextAttempt})` : ''}`);
    }
    return s;
  }
}
