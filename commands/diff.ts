// elton diff: paths that differ between versions or the working tree.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { diff, type DiffResult } from '../src/app/history.js';
import { renderChanges } from '../src/cli/render.js';

export default class Diff extends EltonCommand {
  static summary = 'List the paths that differ between two versions, or between a version and the working tree.';
  static description = `Each line is A (added), M (modified), D (deleted) or T (type changed), then the path.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> diff @1 @2', '<%= config.bin %> diff @latest'];
  static args = {
    from: Args.string({ required: true, description: 'version to compare from' }),
    to: Args.string({ description: 'version to compare to (default: the working tree)' }),
  };

  async run(): Promise<DiffResult> {
    const { args } = await this.parse(Diff);
    const r = await diff({ from: args.from, to: args.to }, await this.deps());
    this.log(r.changes.length ? renderChanges(r.changes) : `no differences between ${r.from} and ${r.to}`);
    return r;
  }
}
