// elton key add: wrap the repository key by another source.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyAdd, type KeyListing } from '../../src/app/key.js';
import { newPassphrase } from '../../src/cli/passphrase.js';
import { printWrappings, storeFlag } from '../../src/cli/key-output.js';

export default class KeyAdd extends EltonCommand {
  static summary = 'Add a wrapping of an encrypted store\'s key: a passphrase, a key file or a KMS key.';
  static description = `The key is opened first, with ELTON_KEYFILE, ELTON_PASSPHRASE or KMS; a new passphrase comes from ELTON_NEW_PASSPHRASE, or is asked. No data is re-encrypted. See docs/encryption.md.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> key add keyfile:/etc/elton/backup.key', 'ELTON_KEYFILE=old.key <%= config.bin %> key add kms:alias/elton', '<%= config.bin %> key add passphrase'];
  static args = { source: Args.string({ required: true, description: 'passphrase, keyfile:PATH or kms:KEY_ID' }) };
  static flags = { ...storeFlag };

  async run(): Promise<KeyListing> {
    const { args, flags } = await this.parse(KeyAdd);
    const passphrase = args.source === 'passphrase' ? await newPassphrase() : '';
    const k = await keyAdd(args.source, () => passphrase, flags.store, await this.deps());
    printWrappings((l) => this.log(l), k);
    return k;
  }
}
