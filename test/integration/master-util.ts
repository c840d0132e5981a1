// Starts a real `elton master` process on an ephemeral port and reads its request log.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { binPath, tempDir } from '../helpers.js';

export interface MasterProcess {
  url: string;
  data: string;
  proc: ChildProcess;
  /** Every request log line so far. */
  lines: string[];
  /** Request lines logged since `mark()`. */
  since(mark: number): string[];
  mark(): number;
  /** Waits until the log holds at least `n` request lines (they are written when responses end). */
  settle(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; output: string }>;
}

const REQUEST_LINE = / (GET|POST|PUT) \/v1\//;

export async function startMasterProcess(args: string[] = [], data = join(tempDir('elton-master-'), 'data'), listen = '127.0.0.1:0'): Promise<MasterProcess> {
  const proc = spawn(process.execPath, [binPath, 'master', '--data', data, '--listen', listen, ...args], {
    env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const lines: string[] = [];
  let partial = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) if (REQUEST_LINE.test(l)) lines.push(l);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`master did not start: ${output}`)), 15000);
    const check = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(output);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`master exited (${code}): ${output}`)); });
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    url, data, proc, lines,
    mark: () => lines.length,
    since: (mark) => lines.slice(mark),
    settle: () => new Promise((r) => setTimeout(r, 50)),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return { code: await exited, output };
    },
  };
}
