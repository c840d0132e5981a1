// elton key remove: drop one wrapping of the repository key (never the last).
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyRemove, type KeyListing } from '../../src/app/key.js';
import { printWrappings, storeFlag } from '../../src/cli/key-output.js';

export default class KeyRemove extends EltonCommand {
  static summary = 'Remove a wrapping of an encrypted store\'s key; refused for the last one.';
  static description = `The key must open (ELTON_KEYFILE, ELTON_PASSPHRASE or KMS). Whoever kept a copy of the old keyring can still open the store with the removed source, since the repository key itself does not change (docs/encryption.md).\n\n${EXIT_CODE_HELP}`;
  static args = { id: Args.string({ required: true, description: 'the wrapping id (elton key list)' }) };
  static flags = { ...storeFlag };

  async run(): Promise<KeyListing> {
    const { args, flags } = await this.parse(KeyRemove);
    const k = await keyRemove(args.id, flags.store, await this.deps());
    printWrappings((l) => this.log(l), k);
    return k;
  }
}
