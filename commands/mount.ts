// elton mount: a version as a read-only file system, fetched lazily, until unmounted.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { mount, type MountInfo, type MountReport } from '../src/app/lazy.js';

export default class Mount extends EltonCommand {
  static summary = 'Mount a version read-only (FUSE): files are fetched on first read, and only the chunks read.';
  static description = `Listing (ls -lR, find) fetches tree objects only; reading a byte range fetches the chunks under it, once, into the user cache. NAME@latest is resolved once and the mount stays on that version. Runs in the foreground until SIGINT, SIGTERM or \`elton unmount MOUNTPOINT\`. Needs FUSE (/dev/fuse and the fuse-native package). See docs/lazy.md.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> mount photos@latest /mnt/photos',
    '<%= config.bin %> mount data@12 /mnt/data --remote http://master:3586 &',
  ];
  static args = {
    ref: Args.string({ required: true, description: 'version to mount: NAME@V or NAME@latest (a bare @V uses the workspace\'s tree)' }),
    mountpoint: Args.string({ required: true, description: 'an existing, empty directory' }),
  };
  static flags = { remote: Flags.string({ description: 'remote to read from (default: the current workspace\'s)' }) };

  async run(): Promise<MountInfo & MountReport & { stopped: string }> {
    const { args, flags } = await this.parse(Mount);
    const json = this.jsonEnabled();
    const { handle, info, finish } = await mount({
      ref: args.ref, mountpoint: args.mountpoint, remote: flags.remote,
      onError: (path, err) => this.warning(`${path}: ${err instanceof Error ? err.message : err}`),
    }, await this.deps());
    if (json) process.stdout.write(JSON.stringify({ event: 'mounted', ...info }) + '\n');
    else process.stdout.write(`mounted ${info.ref}${info.requested !== info.ref ? ` (resolved from ${info.requested})` : ''} at ${info.mountpoint}; stop with Ctrl-C or \`elton unmount ${info.mountpoint}\`\n`);
    const stopped = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
      void handle.gone.then(() => resolve('unmounted'));
    });
    const report = await finish();
    if (!json) this.log(`${stopped}: unmounted ${info.mountpoint}; ${report.stats.reads} reads (${human(report.stats.bytesRead)}), fetched ${report.cache?.fetched.objects ?? 0} objects (${human(report.transfer.bytesDown)} down in ${report.transfer.requests} requests)`);
    return { ...info, ...report, stopped };
  }
}
