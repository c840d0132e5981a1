// The base of every command: --json, progress rendering, and the one place that turns errors into exit codes.

import { Command } from '@oclif/core';
import chalk from 'chalk';
import { EltonError, EXIT, type ErrorJson } from '../errors.js';
import type { EltonEvent, Reporter } from '../events.js';
import type { Deps } from '../app/context.js';

if (process.env.NO_COLOR) chalk.level = 0;

export const EXIT_CODE_HELP = `EXIT CODES (docs/errors.md)
  0  ok                       7  verification failed (corrupt data)
  1  internal error           8  I/O error
  2  usage or bad ref         9  unsupported format
  3  not a workspace          10 already exists
  4  not found                11 remote unreachable
  5  conflict (stale parent   12 auth (token, scope, TLS trust)
     or uncommitted changes)  13 remote error
  6  locked by another elton  14 unavailable here (no FUSE)
     process`;

type Spinner = { text: string; isSpinning: boolean; stop(): void; start(): Spinner };

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return `${u ? n.toFixed(1) : n} ${units[u]}`;
}
export { human };

export abstract class EltonCommand extends Command {
  static enableJsonFlag = true;
  private spinner?: Spinner;

  /**
   * Progress on a TTY only: cron jobs and pipes get nothing but the result. A terminal that
   * reports zero columns (some ptys) gets none either: ora would divide by that width.
   */
  private get interactive(): boolean {
    return Boolean(process.stdout.isTTY && process.stderr.isTTY && process.stderr.columns) && !this.jsonEnabled();
  }

  protected async deps(): Promise<Deps> {
    let reporter: Reporter = (e) => this.onEvent(e);
    if (this.interactive) {
      const { default: ora } = await import('ora');
      const spinner = ora({ stream: process.stderr, color: process.env.NO_COLOR ? undefined : 'cyan' }) as unknown as Spinner;
      this.spinner = spinner;
      const base = reporter;
      let shown = 0;
      reporter = (e) => {
        // Events can come thousands of times a second; the text changes at most ten times a second.
        if (e.type === 'progress' && Date.now() - shown >= 100) {
          shown = Date.now();
          spinner.text = e.total ? `${e.phase} ${e.unit === 'bytes' ? `${human(e.loaded)} / ${human(e.total)}` : `${e.loaded} / ${e.total}`}` : `${e.phase}...`;
          if (!spinner.isSpinning) spinner.start();
        }
        base(e);
      };
    }
    return { cwd: process.cwd(), reporter };
  }

  private onEvent(e: EltonEvent): void {
    if (e.type === 'warning') this.warning(e.message);
  }

  /** A warning on stderr (never fatal, and never mixed into --json output on stdout). */
  protected warning(message: string): void {
    this.spinner?.stop();
    process.stderr.write(`${chalk.yellow('warning:')} ${message}\n`);
  }

  protected async finally(err: Error | undefined): Promise<void> {
    this.spinner?.stop();
    await super.finally(err);
  }

  /** Results replace the spinner line instead of being written after it. */
  log(message = '', ...args: unknown[]): void {
    this.spinner?.stop();
    super.log(message, ...args);
  }

  logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  }

  /** Every failure ends here: a typed error prints its message and hint, never a stack trace. */
  async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    this.spinner?.stop();
    let e: ErrorJson;
    if (err instanceof EltonError) {
      e = err.toJSON();
    } else if (err.oclif?.exit !== undefined) {
      // oclif's own parse errors: unknown flags, missing arguments.
      if (err.oclif.exit === 0) return;
      e = { code: 'E_USAGE', message: err.message.replace(/^Error: /, ''), hint: `see \`elton ${this.id} --help\``, exitCode: EXIT.usage };
    } else {
      e = { code: 'E_INTERNAL', message: err.message, hint: 'this is a bug in elton; set ELTON_DEBUG=1 for the stack trace and report it', exitCode: EXIT.internal };
      if (process.env.ELTON_DEBUG) process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = e.exitCode;
    if (this.jsonEnabled()) {
      this.logJson({ error: e });
    } else {
      process.stderr.write(`${chalk.red('error:')} ${e.message}\n`);
      if (e.hint) process.stderr.write(`${chalk.dim('hint:')} ${e.hint}\n`);
    }
  }
}
