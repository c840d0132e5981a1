// Text renderings shared by several commands.

import chalk from 'chalk';
import type { Change } from '../snapshot.js';

const MARK: Record<Change['change'], string> = { added: chalk.green('A'), modified: chalk.yellow('M'), deleted: chalk.red('D'), 'type-changed': chalk.magenta('T') };

export function renderChanges(changes: Change[]): string {
  return changes.map((c) => `${MARK[c.change]} ${c.path}${c.to === 'dir' || (c.change === 'deleted' && c.from === 'dir') ? '/' : ''}`).join('\n');
}
