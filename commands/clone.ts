// elton clone: a new workspace from a remote, checked out.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { clone, type CloneResult } from '../src/app/clone.js';
import { s3Flags, s3Settings } from '../src/cli/s3-flags.js';

export default class Clone extends EltonCommand {
  static summary = 'Create a workspace from a remote and check a version out.';
  static description = `REMOTE is an http(s)://HOST:PORT master, an s3://BUCKET/PREFIX bucket, a file:///PATH store, a store directory, or another workspace (whose embedded store is then shared).\n\n${EXIT_CODE_HELP}`;
  static strict = false;
  static examples = ['<%= config.bin %> clone http://master:3586 photos@latest ./photos', '<%= config.bin %> clone file:///mnt/shared/store photos@latest ./photos', '<%= config.bin %> clone s3://my-bucket/elton photos@3 ./photos -- albums/2024', '<%= config.bin %> clone ../project project@3 /tmp/project-v3'];
  static args = {
    remote: Args.string({ required: true, description: 'remote URL or path' }),
    ref: Args.string({ required: true, description: 'version to check out (NAME@V or NAME@latest)' }),
    dir: Args.string({ required: true, description: 'new directory' }),
  };

  static flags = { ...s3Flags };

  async run(): Promise<CloneResult> {
    const { args, argv, flags } = await this.parse(Clone);
    const paths = (argv as string[]).slice(3).filter((p) => p !== '--');
    const r = await clone({ remote: args.remote, ref: args.ref, dir: args.dir, paths, s3: s3Settings(flags) }, await this.deps());
    this.log(`cloned ${r.ref} into ${r.root}: ${r.files} files, ${human(r.bytesWritten)}`);
    return r;
  }
}
