// How many parallel streams a transfer uses: one TCP stream moves only 6-11 MB/s between regions.

/** Below this many bytes a second stream costs more (a request, slow start) than it gains. */
const STREAM_MIN_BYTES = 16 * 1024 * 1024;
export const MAX_STREAMS = Math.max(1, Math.min(16, Number(process.env.ELTON_STREAMS ?? 4) || 4));

/** Splits ids into at most MAX_STREAMS groups of similar byte counts, one group per parallel stream. */
export function splitForStreams(ids: string[], sizeOf: (id: string) => number): string[][] {
  const total = ids.reduce((n, id) => n + sizeOf(id), 0);
  const k = Math.max(1, Math.min(MAX_STREAMS, Math.ceil(total / STREAM_MIN_BYTES), ids.length));
  if (k === 1) return ids.length ? [ids] : [];
  const groups = Array.from({ length: k }, () => ({ ids: [] as string[], bytes: 0 }));
  for (const id of [...ids].sort((a, b) => sizeOf(b) - sizeOf(a))) {
    let g = groups[0];
    for (const h of groups) if (h.bytes < g.bytes) g = h;
    g.ids.push(id);
    g.bytes += sizeOf(id);
  }
  return groups.map((g) => g.ids);
}
