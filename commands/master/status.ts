// elton master status: a running master's uptime, trees, replication queue and traffic with its peers.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { masterStatus, type MasterStatus } from '../../src/app/master.js';
import { DEFAULT_PORT } from '../../src/remote/wire.js';

export default class MasterStatusCommand extends EltonCommand {
  static summary = 'Show a running master\'s status: uptime, trees, its replication (queue depth, lag, last error) and its traffic with each peer.';
  static description = `Asks the master (one request; token in ELTON_TOKEN). Replication is null unless the master runs with --replicate-to (docs/backup.md); peers is empty unless it runs with --peer (docs/federation.md).\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> master status http://master:3586', '<%= config.bin %> master status http://master:3586 --json'];
  static args = { url: Args.string({ description: `the master (default http://127.0.0.1:${DEFAULT_PORT})`, required: false }) };

  async run(): Promise<MasterStatus> {
    const { args } = await this.parse(MasterStatusCommand);
    const s = await masterStatus(args.url ?? `http://127.0.0.1:${DEFAULT_PORT}`, await this.deps());
    this.log(`${s.url}${s.name ? ` (master "${s.name}")` : ''}${s.encrypted ? ', encrypted' : ''}: up ${s.uptimeSeconds} s, ${s.trees} trees`);
    const r = s.replication;
    if (!r) this.log('replication: off');
    else {
      this.log(`replication to ${r.target}: ${r.queue} queued, lag ${r.lagSeconds} s, ${r.copied} versions copied since start${r.running ? ', running' : ''}`);
      if (r.lastSuccess) this.log(`  last success ${r.lastSuccess}`);
      if (r.lastError) this.log(`  last error ${r.lastError.time}: ${r.lastError.code}: ${r.lastError.message}${r.failures ? ` (${r.failures} in a row, next attempt ${r.nextAttempt})` : ''}`);
    }
    for (const p of s.peers ?? []) {
      this.log(`peer ${p.name} (${p.url}): out ${p.out.requests} requests, ${p.out.bytesUp} B up, ${p.out.bytesDown} B down; in ${p.in.requests} requests, ${p.in.bytesIn} B in, ${p.in.bytesOut} B out`);
      this.log(`  ${p.objectsFetched} objects fetched, ${p.objectsSent} sent, ${p.versionsForwarded} commits forwarded, ${p.rejected} rejected`);
      if (p.lastError) this.log(`  last error ${p.lastError.time}: ${p.lastError.code}: ${p.lastError.message}`);
    }
    return s;
  }
}
