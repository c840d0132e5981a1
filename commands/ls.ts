// elton ls: a directory of a version.
import { Args, Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { ls, type LsResult } from '../src/app/history.js';

export default class Ls extends EltonCommand {
  static summary = 'List a directory of a version; reads tree objects only.';
  static description = EXIT_CODE_HELP;
  static examples = ['<%= config.bin %> ls @latest', '<%= config.bin %> ls photos@3 2024/summer -r'];
  static args = {
    ref: Args.string({ required: true, description: 'version (NAME@V, @latest...)' }),
    path: Args.string({ description: 'directory or file inside it' }),
  };
  static flags = { recursive: Flags.boolean({ char: 'r', description: 'list subdirectories too' }) };

  async run(): Promise<LsResult> {
    const { args, flags } = await this.parse(Ls);
    const r = await ls({ ref: args.ref, path: args.path, recursive: flags.recursive }, await this.deps());
    for (const e of r.entries) {
      this.log(`${e.type.padEnd(7)} ${e.mode} ${human(e.size).padStart(10)}  ${e.mtime}  ${flags.recursive ? e.path : e.name}${e.target ? ` -> ${e.target}` : ''}${e.type === 'dir' ? '/' : ''}`);
    }
    return r;
  }
}
