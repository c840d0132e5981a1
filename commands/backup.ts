// elton backup: copy what the target lacks, version by version, safe to run from cron.
import { Flags } from '@oclif/core';
import { EltonCommand, EXIT_CODE_HELP, human } from '../src/cli/base.js';
import { backup, type BackupResult } from '../src/app/backup.js';
import { EXIT } from '../src/errors.js';

export default class Backup extends EltonCommand {
  static summary = 'Copy the versions and objects a target remote lacks from a source remote (file, master or S3, either way).';
  static description = `Finds what the target lacks in a constant number of round trips, sends each missing object once, checked against its id, and creates each version at the target, under its own number, only once everything it reaches is there. Idempotent and resumable: a run with nothing new moves no data, and a killed run loses nothing. A lock per pair of remotes makes an overlapping run exit at once with code 6. Tokens: ELTON_FROM_TOKEN and ELTON_TO_TOKEN, else ELTON_TOKEN. See docs/backup.md.\n\n${EXIT_CODE_HELP}`;
  static examples = [
    '<%= config.bin %> backup --from http://tokyo-master:3586 --to s3://oregon-backup/elton',
    '<%= config.bin %> backup --from http://master:3586 --to /mnt/backup/elton --tree photos --since 7d --bwlimit 10M',
    '<%= config.bin %> backup --from http://master:3586 --to s3://backup/elton --dry-run --json',
  ];
  static flags = {
    from: Flags.string({ description: 'the remote to copy from: master URL, s3://BUCKET/PREFIX, store or workspace path', required: true }),
    to: Flags.string({ description: 'the remote to copy to (created if empty)', required: true }),
    tree: Flags.string({ description: 'copy only this tree (repeatable)', multiple: true }),
    since: Flags.string({ description: 'copy only versions committed since a date (2026-11-01) or within an age (36h, 7d)' }),
    'dry-run': Flags.boolean({ description: 'report what would move (versions, objects, bytes, requests) and change nothing' }),
    bwlimit: Flags.string({ description: 'average bytes per second to send, as 10M or 512K' }),
  };

  async run(): Promise<BackupResult> {
    const { flags } = await this.parse(Backup);
    const r = await backup({ from: flags.from, to: flags.to, trees: flags.tree, since: flags.since, dryRun: flags['dry-run'], bwlimit: flags.bwlimit }, await this.deps());
    const verb = r.dryRun ? 'would copy' : 'copied';
    const versions = r.copied.length ? `${r.copied.length} version${r.copied.length === 1 ? '' : 's'} (${r.copied.slice(0, 5).join(', ')}${r.copied.length > 5 ? ', ...' : ''})` : 'nothing new';
    const requests = r.dryRun ? `about ${r.requests} requests` : `${r.transfer.to.requests} requests to the target`;
    this.log(`backup ${r.from} -> ${r.to}: ${verb} ${versions}, ${r.objects} objects, ${human(r.bytes)}, ${requests}, in ${r.seconds.toFixed(1)} s; ${r.upToDate} up to date${r.skipped.length ? `; ${r.skipped.length} skipped` : ''}`);
    for (const p of r.problems) this.log(`${p.kind} object ${p.id} (needed by ${p.versions.slice(0, 5).join(', ') || 'no version'}): ${p.message}`);
    if (!r.ok) process.exitCode = EXIT.corrupt;
    return r;
  }
}
