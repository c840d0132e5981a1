// elton init: make a directory a workspace.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { init, type InitResult } from '../src/app/init.js';
import { s3Flags, s3Settings } from '../src/cli/s3-flags.js';

export default class Init extends EltonCommand {
  static summary = 'Make a directory an elton workspace.';
  static description = `Creates DIR/.elton. Without --remote, versions and objects live in the embedded store inside .elton/, which issues versions itself. With an http(s):// master, the master issues versions and .elton/cache keeps what was fetched or committed here; set ELTON_TOKEN if the master needs a token. With s3://BUCKET/PREFIX, the bucket holds the store (created on init if absent) and versions are issued by conditional PUT; credentials come from the AWS chain (docs/remotes.md).\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init ./photos --tree photos',
    '<%= config.bin %> init --remote file:///mnt/shared/elton-store',
    '<%= config.bin %> init --remote http://master.cluster-a:3586',
    '<%= config.bin %> init --remote s3://my-bucket/elton',
    '<%= config.bin %> init --remote s3://backups/elton --endpoint http://minio:9000 --region us-east-1',
  ];
  static args = { dir: Args.string({ description: 'directory to initialize (default: the current one)' }) };
  static flags = {
    tree: Flags.string({ description: 'tree name (default: the directory name)' }),
    remote: Flags.string({ description: 'remote URL: file:///PATH, http(s)://HOST:PORT (a master) or s3://BUCKET/PREFIX; default: the embedded store' }),
    ...s3Flags,
  };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    const result = await init({ dir: args.dir, tree: flags.tree, remote: flags.remote, s3: s3Settings(flags) }, await this.deps());
    this.log(`initialized ${result.tree} in ${result.root} (store: ${result.remote ?? 'embedded'})`);
    return result;
  }
}
