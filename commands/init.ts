// elton init: make a directory a workspace.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { init, type InitResult } from '../src/app/init.js';

export default class Init extends EltonCommand {
  static summary = 'Make a directory an elton workspace.';
  static description = `Creates DIR/.elton. Without --remote, versions and objects live in the embedded store inside .elton/, which issues versions itself. With an http(s):// master, the master issues versions and .elton/cache keeps what was fetched or committed here; set ELTON_TOKEN if the master needs a token.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init ./photos --tree photos',
    '<%= config.bin %> init --remote file:///mnt/shared/elton-store',
    '<%= config.bin %> init --remote http://master.cluster-a:3586',
  ];
  static args = { dir: Args.string({ description: 'directory to initialize (default: the current one)' }) };
  static flags = {
    tree: Flags.string({ description: 'tree name (default: the directory name)' }),
    remote: Flags.string({ description: 'remote URL: file:///PATH or http(s)://HOST:PORT (a master); default: the embedded store' }),
  };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    const result = await init({ dir: args.dir, tree: flags.tree, remote: flags.remote }, await this.deps());
    this.log(`initialized ${result.tree} in ${result.root} (store: ${result.remote ?? 'embedded'})`);
    return result;
  }
}
