// elton unmount: end a mount made by `elton mount`.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { unmount } from '../src/app/lazy.js';

export default class Unmount extends EltonCommand {
  static summary = 'Unmount a version mounted with `elton mount`; the mounting process then exits.';
  static description = `Refused while files under the mount are open, unless --lazy, which detaches it at once and lets open files finish.\n\n${EXIT_CODE_HELP}`;
  static args = { mountpoint: Args.string({ required: true, description: 'where the version is mounted' }) };
  static flags = { lazy: Flags.boolean({ description: 'detach now even if busy (umount -l)' }) };

  async run(): Promise<{ mountpoint: string }> {
    const { args, flags } = await this.parse(Unmount);
    const r = await unmount(args.mountpoint, flags.lazy, await this.deps());
    this.log(`unmounted ${r.mountpoint}`);
    return r;
  }
}
