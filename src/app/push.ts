// Use-case: send a commit that was saved locally while the remote could not be reached.

import { conflict, EltonError, EXIT, hasCode } from '../errors.js';
import { formatRef } from '../ref.js';
import type { Transfer } from '../store/store.js';
import { issuePending } from './commit.js';
import { openWorkspace, reporterOf, settlePending, transferOf, type Deps } from './context.js';

export interface PushOptions { force?: boolean }

export interface PushResult {
  /** NAME@V issued for the pending commit, or null when there was nothing to push. */
  ref: string | null;
  tree: string;
  version: number | null;
  pushed: boolean;
  transfer: Transfer;
}

export async function push(opts: PushOptions, deps: Deps): Promise<PushResult> {
  const { ws, store } = await openWorkspace(deps);
  const lock = await ws.lock('push');
  try {
    const tree = ws.config.tree;
    const pending = await settlePending(ws, store);
    if (!pending) return { ref: null, tree, version: null, pushed: false, transfer: transferOf(store) };
    let issued;
    try {
      issued = await issuePending(ws, store, { ...pending, force: pending.force || !!opts.force }, reporterOf(deps));
    } catch (err) {
      if (!hasCode(err, 'E_CONFLICT')) throw err;
      throw conflict(err.message, `\`elton push --force\` records the pending commit anyway, with parent @${pending.parent ?? 'none'}; or \`elton checkout ${tree}@latest\` then \`elton commit\`, which replaces it`, err.details);
    }
    if (!issued.record) throw new EltonError('E_UNREACHABLE', issued.reason!, EXIT.unreachable, 'the commit stays pending; run `elton push` again when the master is back');
    return { ref: formatRef(tree, issued.record.version), tree, version: issued.record.version, pushed: true, transfer: transferOf(store) };
  } finally {
    await store.close();
    await lock.release();
  }
}
