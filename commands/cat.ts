// elton cat: one file of a version.
import { Args } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP } from '../src/cli/base.js';
import { cat } from '../src/app/history.js';

export default class Cat extends EltonCommand {
  static summary = 'Print a file of a version to stdout.';
  static description = `With --json, the content is given as UTF-8 text when it is valid UTF-8, otherwise as base64.\n\n${EXIT_CODE_HELP}`;
  static examples = ['<%= config.bin %> cat @latest:README.md', '<%= config.bin %> cat photos@3:2024/list.txt > list.txt'];
  static args = { spec: Args.string({ required: true, description: 'REF:PATH' }) };

  async run(): Promise<{ ref: string; path: string; size: number; encoding: 'utf8' | 'base64'; content: string }> {
    const { args } = await this.parse(Cat);
    const r = await cat({ spec: args.spec }, await this.deps());
    if (!this.jsonEnabled()) process.stdout.write(r.content);
    const text = r.content.toString('utf8');
    const utf8 = Buffer.from(text, 'utf8').equals(r.content);
    return { ref: r.ref, path: r.path, size: r.size, encoding: utf8 ? 'utf8' : 'base64', content: utf8 ? text : r.content.toString('base64') };
  }
}
