// Events the core emits instead of printing: progress as {phase, loaded, total} and warnings.

export type Phase = 'scan' | 'hash' | 'write' | 'read' | 'checkout' | 'fetch' | 'push' | 'plan' | 'copy';

export type EltonEvent =
  | { type: 'progress'; phase: Phase; loaded: number; total: number; unit?: 'files' | 'bytes' | 'objects' }
  | { type: 'warning'; code: string; path?: string; message: string };

export type Reporter = (event: EltonEvent) => void;

export const silent: Reporter = () => {};
