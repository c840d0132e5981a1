// elton verify: check that a remote holds every object of its versions, and optionally that they read back true.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { verify, type VerifyResult } from '../src/app/verify.js';
import { EXIT } from '../src/errors.js';

export default class Verify extends EltonCommand {
  static summary = 'Check a remote: every version\'s trees and chunks exist there, and with --read-data that they read back true.';
  static description = `Asks the remote itself, never a local cache. Trees are always read and verified; chunks are checked for presence, and with --read-data read back and checked against their ids (all of them, or a stable sample of PERCENT). Exits 7 when anything is missing or corrupt, listing what and which versions reach it. REMOTE is a master URL, s3://BUCKET/PREFIX, a store path or a workspace path.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> verify http://master:3586', '<%= config.bin %> verify s3://backup/elton --tree photos --read-data=10'];
  static args = { remote: Args.string({ required: true, description: 'the remote to check' }) };
  static flags = {
    tree: Flags.string({ description: 'check only this tree (repeatable)', multiple: true }),
    'read-data': Flags.string({ description: 'read chunks back and check their hashes: all, or =PERCENT of them', required: false }),
  };

  async run(): Promise<VerifyResult> {
    // `--read-data` with no value means every chunk; oclif string flags always take one.
    this.argv = this.argv.map((a) => (a === '--read-data' ? '--read-data=100' : a));
    const { args, flags } = await this.parse(Verify);
    const percent = flags['read-data'] === undefined ? undefined : Number(flags['read-data']);
    const r = await verify({ remote: args.remote, trees: flags.tree, readDataPercent: percent }, await this.deps());
    const read = r.readData ? `, read back ${r.readData.objects} chunks (${human(r.readData.bytes)}, ${r.readData.percent}%)` : '';
    this.log(`${r.remote}: ${r.trees} trees, ${r.versions} versions, ${r.objects.trees} tree objects and ${r.objects.chunks} chunks checked${read}`);
    for (const p of r.problems) this.log(`${p.kind} ${p.what} ${p.id} (in ${p.versions.slice(0, 5).join(', ')}${p.versions.length > 5 ? ', ...' : ''}): ${p.message}`);
    if (r.moreProblems) this.log(`... and ${r.moreProblems} more problems`);
    this.log(r.ok ? 'ok' : 'FAILED');
    if (!r.ok) process.exitCode = EXIT.corrupt;
    return r;
  }
}
