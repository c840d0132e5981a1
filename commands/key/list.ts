// elton key list: the wrappings of an encrypted store's key, without any secret.
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyList, type KeyListing } from '../../src/app/key.js';
import { printWrappings, storeFlag } from '../../src/cli/key-output.js';

export default class KeyList extends EltonCommand {
  static summary = 'List the wrappings of an encrypted store\'s key: id, source, date, and the KMS key, key file fingerprint or scrypt parameters.';
  static description = `Needs no key. See docs/encryption.md.\n\n${EXIT_CODE_HELP}`;
  static flags = { ...storeFlag };

  async run(): Promise<KeyListing> {
    const { flags } = await this.parse(KeyList);
    const k = await keyList(flags.store, await this.deps());
    printWrappings((l) => this.log(l), k);
    return k;
  }
}
