// A passphrase for a new wrapping: from the environment, or asked twice on the terminal (never echoed).

import readline from 'node:readline';
import { usage } from '../errors.js';

function askHidden(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Echo only the question, not what is typed.
  const output = rl as unknown as { _writeToOutput: (s: string) => void };
  output._writeToOutput = (s: string) => { if (s.startsWith(question)) process.stderr.write(question); };
  return new Promise<string>((resolve) => rl.question(question, (answer) => { rl.close(); process.stderr.write('\n'); resolve(answer); }));
}

/**
 * ELTON_NEW_PASSPHRASE, else ELTON_PASSPHRASE, else a prompt (twice) on a terminal. In cron or a
 * pipe, with neither variable set, it is a usage error rather than a hang.
 */
export async function newPassphrase(): Promise<string> {
  const given = process.env.ELTON_NEW_PASSPHRASE || process.env.ELTON_PASSPHRASE;
  if (given) return given;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw usage('a passphrase is needed, and there is no terminal to ask it on', 'set ELTON_NEW_PASSPHRASE (or ELTON_PASSPHRASE)');
  }
  const first = await askHidden('new passphrase: ');
  const second = await askHidden('the same again: ');
  if (first !== second) throw usage('the two passphrases differ', 'run the command again');
  return first;
}

/** Whether these key sources need a passphrase (none given means the default, a passphrase). */
export const needsPassphrase = (sources: string[]) => !sources.length || sources.includes('passphrase');
