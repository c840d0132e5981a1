// elton status: changes since the base version.
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { status, type StatusResult } from '../src/app/history.js';
import { renderChanges } from '../src/cli/render.js';

export default class Status extends EltonCommand {
  static summary = 'Show what changed in the working tree since its base version.';
  static description = EXIT_CODE_HELP;
  static examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];

  async run(): Promise<StatusResult> {
    await this.parse(Status);
    const r = await status(await this.deps());
    const latest = r.latest === null ? '; the remote cannot be reached' : r.latest && r.head !== `${r.tree}@${r.latest}` ? `; latest is ${r.tree}@${r.latest}` : '';
    this.log(`on ${r.head ?? `${r.tree} (no version yet)`}${latest}`);
    if (r.pending) this.log(`a commit is pending (not yet sent to the master): run \`elton push\``);
    this.log(r.clean ? 'nothing changed' : renderChanges(r.changes));
    return r;
  }
}
