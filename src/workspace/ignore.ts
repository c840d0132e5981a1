// Ignore rules: .eltonignore everywhere, and .gitignore (plus .git/info/exclude) inside a Git repository.

import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

/** Names never snapshotted, at any depth. */
export const ALWAYS_IGNORED = new Set(['.elton', '.git']);

interface Rules { base: string; ig: Ignore }

/** Finds the top of the Git repository that contains `dir`, if any. */
export function findGitRoot(dir: string): string | undefined {
  let d = dir;
  for (;;) {
    if (existsSync(join(d, '.git'))) return d;
    const up = dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

function load(file: string): Ignore | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    return text.trim() ? ignore().add(text) : undefined;
  } catch {
    return undefined;
  }
}

const toPosix = (p: string) => (sep === '/' ? p : p.split(sep).join('/'));

/**
 * The rule set in force while walking a workspace. Deeper files override shallower ones,
 * and within a file the last matching pattern wins, as in Git.
 */
export class IgnoreRules {
  private readonly stack: Rules[] = [];

  constructor(private readonly root: string, private readonly useGit: boolean) {}

  static forWorkspace(root: string): IgnoreRules {
    const gitRoot = findGitRoot(root);
    const rules = new IgnoreRules(root, gitRoot !== undefined);
    if (gitRoot) {
      const exclude = join(gitRoot, '.git', 'info', 'exclude');
      if (statSync(join(gitRoot, '.git')).isDirectory()) rules.push(toPosix(relative(root, gitRoot)), load(exclude));
      // .gitignore files above the workspace, down from the repository's top, apply too.
      const chain: string[] = [];
      for (let d = dirname(root); gitRoot !== root && d.startsWith(gitRoot); d = dirname(d)) {
        chain.unshift(d);
        if (d === gitRoot) break;
      }
      for (const d of chain) rules.push(toPosix(relative(root, d)), load(join(d, '.gitignore')));
    }
    return rules;
  }

  private push(base: string, ig: Ignore | undefined): void {
    if (ig) this.stack.push({ base, ig });
  }

  /** Loads the rule files of directory `rel` (posix, relative to the root; '' for the root); returns how many to pop later. */
  enter(rel: string): number {
    const before = this.stack.length;
    const abs = rel ? join(this.root, rel) : this.root;
    if (this.useGit) this.push(rel, load(join(abs, '.gitignore')));
    this.push(rel, load(join(abs, '.eltonignore')));
    return this.stack.length - before;
  }

  leave(count: number): void {
    this.stack.length -= count;
  }

  ignores(rel: string, isDir: boolean): boolean {
    let ignored = false;
    for (const { base, ig } of this.stack) {
      let sub: string;
      if (base === '') sub = rel;
      else if (base.startsWith('..')) sub = toPosix(relative(join(this.root, base), join(this.root, rel)));
      else if (rel.startsWith(base + '/')) sub = rel.slice(base.length + 1);
      else continue;
      const result = ig.test(isDir ? sub + '/' : sub);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }
}
