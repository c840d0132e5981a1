// elton init: make a directory a workspace.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { init, type InitResult } from '../src/app/init.js';
import { s3Flags, s3Settings } from '../src/cli/s3-flags.js';
import { needsPassphrase, newPassphrase } from '../src/cli/passphrase.js';
import { usage } from '../src/errors.js';

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
    '<%= config.bin %> init --encrypt --key-source passphrase --key-source keyfile:/etc/elton/repo.key',
    '<%= config.bin %> init --encrypt --key-source kms:alias/elton-backups',
  ];
  static args = { dir: Args.string({ description: 'directory to initialize (default: the current one)' }) };
  static flags = {
    tree: Flags.string({ description: 'tree name (default: the directory name)' }),
    remote: Flags.string({ description: 'remote URL: file:///PATH, http(s)://HOST:PORT (a master) or s3://BUCKET/PREFIX; default: the embedded store' }),
    encrypt: Flags.boolean({ description: 'encrypt the store client-side (the embedded store or a file:// store; docs/encryption.md)' }),
    'key-source': Flags.string({ description: 'with --encrypt: what wraps the key: passphrase (ELTON_NEW_PASSPHRASE, or asked), keyfile:PATH or kms:KEY_ID (repeatable; default passphrase)', multiple: true }),
    ...s3Flags,
  };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    if (flags['key-source'] && !flags.encrypt) throw usage('--key-source needs --encrypt', 'add --encrypt: key sources wrap the key of an encrypted store');
    const sources = flags['key-source'] ?? [];
    const passphrase = flags.encrypt && needsPassphrase(sources) ? await newPassphrase() : '';
    const encrypt = flags.encrypt ? { sources, passphrase: () => passphrase } : undefined;
    const result = await init({ dir: args.dir, tree: flags.tree, remote: flags.remote, s3: s3Settings(flags), encrypt }, await this.deps());
    this.log(`initialized ${result.tree} in ${result.root} (store: ${result.remote ?? 'embedded'}${result.encryption ? `, encrypted; key wrapped by ${result.encryption.map((w) => w.source).join(', ')}` : result.encrypted ? ', encrypted' : ''})`);
    return result;
  }
}
