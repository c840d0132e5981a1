// elton checkout: make the working tree match a version.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { checkout, type CheckoutResult } from '../src/app/checkout.js';

export default class Checkout extends EltonCommand {
  static summary = 'Make the working tree match a version (or some paths of it).';
  static description = `REF is NAME@V, NAME@latest, @V or @latest. Files that already match are left alone; tracked files absent from the version are deleted; untracked and ignored files are kept. Uncommitted changes in the way stop the checkout unless --force.\n\n${EXIT_CODE_HELP}`;
  static strict = false;
  static examples = ['<%= config.bin %> checkout @latest', '<%= config.bin %> checkout photos@3', '<%= config.bin %> checkout @2 -- docs/ README.md'];
  static args = { ref: Args.string({ required: true, description: 'version to check out' }) };
  static flags = { force: Flags.boolean({ description: 'discard uncommitted changes that are in the way' }) };

  async run(): Promise<CheckoutResult> {
    const { args, flags, argv } = await this.parse(Checkout);
    const paths = (argv as string[]).slice(1).filter((p) => p !== '--');
    const r = await checkout({ ref: args.ref, paths, force: flags.force }, await this.deps());
    this.log(`${r.ref}: ${r.written} written, ${r.reused} unchanged, ${r.deleted} deleted (${human(r.bytesWritten)})`);
    return r;
  }
}
