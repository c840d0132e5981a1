// elton key rotate: re-wrap the repository key under a KMS key; no data is re-encrypted.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyRotate, type KeyListing } from '../../src/app/key.js';
import { printWrappings, storeFlag } from '../../src/cli/key-output.js';

export default class KeyRotate extends EltonCommand {
  static summary = 'Re-wrap the repository key of a KMS wrapping, under the same KMS key (after KMS rotated its material) or another one.';
  static description = `Only the wrapping changes; no object is re-encrypted. See docs/encryption.md.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> key rotate 1a2b3c4d', '<%= config.bin %> key rotate 1a2b3c4d --to alias/elton-2027'];
  static args = { id: Args.string({ required: true, description: 'the KMS wrapping id (elton key list)' }) };
  static flags = { to: Flags.string({ description: 'another KMS key (id, ARN or alias/NAME)' }), ...storeFlag };

  async run(): Promise<KeyListing> {
    const { args, flags } = await this.parse(KeyRotate);
    const k = await keyRotate(args.id, flags.to, flags.store, await this.deps());
    printWrappings((l) => this.log(l), k);
    return k;
  }
}
