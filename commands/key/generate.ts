// elton key generate: a new key file (32 random bytes, base64, mode 0600).
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../../src/cli/base.js';
import { keyGenerate } from '../../src/app/key.js';

export default class KeyGenerate extends EltonCommand {
  static summary = 'Write a new key file, for --key-source keyfile:PATH or elton key add keyfile:PATH.';
  static description = `32 random bytes, base64, readable by its owner only; an existing file is never overwritten (E_EXISTS). Keep a copy somewhere safe: without a source that opens it, an encrypted store is lost. See docs/encryption.md.\n\n${EXIT_CODE_HELP}`;
  static args = { path: Args.string({ required: true, description: 'where to write it' }) };

  async run(): Promise<{ path: string }> {
    const { args } = await this.parse(KeyGenerate);
    const r = await keyGenerate(args.path, await this.deps());
    this.log(`wrote ${r.path}`);
    return r;
  }
}
