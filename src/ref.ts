// Refs: NAME@V, NAME@latest, @V and @latest, optionally followed by :PATH.

import { badRef, usage } from './errors.js';

export interface Ref { tree?: string; version: number | 'latest'; path?: string }

/** A master's name in a federation: what follows "~" in the names of the trees it is home of. */
const MASTER_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const TREE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:~[a-z0-9][a-z0-9-]{0,39})?$/;

export function isTreeName(name: string): boolean {
  return TREE_NAME.test(name);
}

export function isMasterName(name: string): boolean {
  return MASTER_NAME.test(name);
}

export function checkTreeName(name: string): string {
  if (!isTreeName(name)) {
    throw usage(`invalid tree name "${name}"`, 'a tree name is 1-100 characters of letters, digits, ".", "_" or "-", starting with a letter or digit, optionally followed by "~HOME", the name of the master it belongs to (docs/federation.md)');
  }
  return name;
}

/**
 * The master a tree belongs to, from its name: "data~tokyo" is homed on the master named tokyo.
 * Names without "~" are local to the master that holds them. Because the home is part of the
 * name, two masters can never both become home of one tree, and no coordination is needed to
 * create one.
 */
export function homeOf(tree: string): string | undefined {
  const tilde = tree.indexOf('~');
  return tilde < 0 ? undefined : tree.slice(tilde + 1);
}

/** Turns a directory name into a valid tree name ("My Photos!" becomes "My-Photos"). */
export function treeNameFromDir(dir: string): string {
  const name = dir.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').replace(/-+$/, '').slice(0, 100);
  return name || 'tree';
}

export function parseRef(text: string, opts: { allowPath?: boolean } = {}): Ref {
  let spec = text;
  let path: string | undefined;
  const colon = spec.indexOf(':');
  if (colon >= 0) {
    if (!opts.allowPath) throw badRef(text, 'a path (":PATH") is not expected here');
    path = spec.slice(colon + 1);
    spec = spec.slice(0, colon);
  }
  const at = spec.lastIndexOf('@');
  if (at < 0) throw badRef(text, 'missing "@VERSION"');
  const name = spec.slice(0, at);
  const v = spec.slice(at + 1);
  if (name && !isTreeName(name)) throw badRef(text, `"${name}" is not a valid tree name`);
  let version: number | 'latest';
  if (v === 'latest') version = 'latest';
  else if (/^[1-9][0-9]{0,14}$/.test(v)) version = Number(v);
  else throw badRef(text, `"${v}" is not a version (1, 2, 3... or latest)`);
  return { tree: name || undefined, version, path };
}

export function formatRef(tree: string, version: number | 'latest'): string {
  return `${tree}@${version}`;
}
