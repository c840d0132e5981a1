// elton key writer: add a write-only host, and write its credential.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyWriter, type KeyListing } from '../../src/app/key.js';
import { printWrappings, storeFlag } from '../../src/cli/key-output.js';

export default class KeyWriter extends EltonCommand {
  static summary = 'Add a write-only host: it can commit to the encrypted store, and read nothing it did not write itself.';
  static description = `The repository key must open (ELTON_KEYFILE, ELTON_PASSPHRASE or KMS). It may commit only to the trees given with --tree (default: a tree named like the host); readers refuse its versions of any other. The credential written to --out (mode 0600) holds the host's own key, or that key wrapped by --kms, so that the host must also be allowed kms:Decrypt on that KMS key. On the host, set ELTON_WRITER=PATH. \`elton key remove ID\` removes the writer, and what it wrote no longer opens. See docs/encryption.md.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> key writer backup-host-1 --tree photos-host-1 --out backup-host-1.writer --store s3://backups/photos',
    '<%= config.bin %> key writer db-7 --out db-7.writer --kms alias/elton-writer-db-7',
  ];
  static args = { name: Args.string({ required: true, description: 'the host\'s name, as listed' }) };
  static flags = {
    ...storeFlag,
    out: Flags.string({ required: true, description: 'where to write the credential (never over a file)' }),
    tree: Flags.string({ multiple: true, description: 'a tree it may commit to (repeatable; default: NAME)' }),
    kms: Flags.string({ description: 'wrap the host\'s key with this KMS key (id, ARN or alias/NAME)' }),
  };

  async run(): Promise<KeyListing & { writer: { id: string; name: string; credential: string } }> {
    const { args, flags } = await this.parse(KeyWriter);
    const k = await keyWriter(args.name, flags.tree?.length ? flags.tree : [args.name], flags.out, flags.kms, flags.store, await this.deps());
    this.log(`writer "${k.writer.name}" (${k.writer.id}): credential in ${k.writer.credential}; on the host, set ELTON_WRITER=${k.writer.credential}`);
    printWrappings((l) => this.log(l), k);
    return k;
  }
}
