// A TCP proxy on 127.0.0.1 that makes a local server look as if it sat across a WAN link (latency, shared bandwidth, cut connections).
//
// Model. Each direction (client->server "up", server->client "down") is one link shared by every
// connection through the proxy. A chunk read from one side waits for the chunks queued before it on
// that link (from any connection), is transmitted at `mbitPerSec`, then arrives rttMs/2 later: a
// zero-burst token bucket followed by a fixed propagation delay. Parallel streams therefore share
// the link as on a real WAN, and order is preserved within each connection.
//
// A new connection first pays its TCP handshake: the client's first byte leaves no earlier than
// `handshakeRtts` round trips after the proxy accepted it (the proxy itself accepts instantly on
// loopback). A request/response exchange on an open connection costs one RTT.
//
// Memory stays bounded: a link stops reading from its sources while it holds more than a
// bandwidth-delay product of undelivered bytes, and a connection stops reading while the socket it
// delivers to has not drained. Half-close (end) is forwarded after the data before it; an error or
// abrupt close on either side resets the other side.

import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface WanOptions {
  /** Round-trip time added to every exchange; each direction delays every chunk by rttMs / 2. */
  rttMs: number;
  /** Link rate per direction in Mbit/s (10^6 bit), shared by all connections; undefined = unlimited. */
  mbitPerSec?: number;
  /**
   * After this many client->server bytes in total have been delivered (counted over all connections
   * since start), every open connection is reset, once; the delivery that crosses the threshold is
   * truncated at it. Later connections pass normally. For fault tests.
   */
  cutAfterBytes?: number;
  /** Round trips a new connection waits before its first client byte leaves (the TCP handshake). Default 1; 0 disables. */
  handshakeRtts?: number;
}

export interface WanProxy {
  host: string;
  port: number;
  /** `scheme://127.0.0.1:port` (default scheme http). */
  url(scheme?: 'http' | 'https'): string;
  /** Connections accepted, and bytes delivered to the server (up) and to clients (down) so far. */
  stats: { connections: number; bytesUp: number; bytesDown: number };
  /** Stops listening and resets every open connection. */
  close(): Promise<void>;
}

/** Segment size for rate-limited links, so a large read is delivered progressively rather than all at once. */
const SEGMENT = 16 * 1024;
/** Floor for a link's undelivered-bytes limit (a few socket reads), for tiny bandwidth-delay products. */
const MIN_WINDOW = 256 * 1024;
/** Undelivered-bytes limit of a link without a rate cap. */
const UNLIMITED_WINDOW = 16 * 1024 * 1024;

/** One direction of the emulated link, shared by every connection through the proxy. */
class Link {
  /** Time (performance.now() ms) at which the transmitter finishes what it has been given. */
  private freeAt = 0;
  /** Bytes accepted from sources and not yet delivered, over all connections. */
  queued = 0;
  /** Pipes whose source is paused because this link is full. */
  readonly waiting = new Set<Pipe>();

  constructor(
    readonly delayMs: number,
    /** Bytes per ms, or undefined for no cap. */
    readonly bytesPerMs: number | undefined,
    readonly window: number,
  ) {}

  /** Reserves transmission of `bytes` and returns the arrival time at the far end. */
  schedule(bytes: number, now: number): number {
    if (this.bytesPerMs === undefined) return now + this.delayMs;
    this.freeAt = Math.max(now, this.freeAt) + bytes / this.bytesPerMs;
    return this.freeAt + this.delayMs;
  }

  get full(): boolean {
    return this.queued > this.window;
  }

  /** Resumes the sources paused on this link once it has room again. */
  release(): void {
    if (this.full) return;
    for (const pipe of this.waiting) {
      this.waiting.delete(pipe);
      pipe.maybeResume();
    }
  }
}

/** Counts what a pipe delivers. */
interface Meter {
  /** Called before a buffer of `bytes` is written; returns how many of them to write (the rest are dropped). */
  admit(bytes: number): number;
  /** Called after that write. */
  written?(): void;
}

interface Item {
  /** null marks the end of the stream (half-close). */
  data: Buffer | null;
  at: number;
}

/** One direction of one connection: reads `src`, delays through `link`, writes `dst`. */
class Pipe {
  private readonly queue: Item[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private blockedByDst = false;
  private closed = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly link: Link,
    /** Earliest time the first byte may arrive at `dst` (handshake). */
    private readonly notBeforeAt: number,
    private readonly meter: Meter,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => this.enqueue(null, performance.now()));
    dst.on('drain', () => {
      this.blockedByDst = false;
      this.maybeResume();
    });
  }

  private push(chunk: Buffer): void {
    const now = performance.now();
    const step = this.link.bytesPerMs === undefined ? chunk.length : SEGMENT;
    for (let off = 0; off < chunk.length; off += step) this.enqueue(chunk.subarray(off, off + step), now);
    if (this.link.full) {
      this.src.pause();
      this.link.waiting.add(this);
    }
  }

  private enqueue(data: Buffer | null, now: number): void {
    if (this.closed) return;
    const bytes = data?.length ?? 0;
    const at = Math.max(this.link.schedule(bytes, now), this.notBeforeAt, this.lastAt);
    this.lastAt = at;
    this.link.queued += bytes;
    this.queue.push({ data, at });
    if (!this.timer) this.arm(now);
  }

  private arm(now: number): void {
    const next = this.queue[this.head];
    if (!next) return;
    // Timers may fire a fraction of a millisecond early; flush() re-arms until the item is due.
    this.timer = setTimeout(() => this.flush(), Math.max(1, Math.ceil(next.at - now)));
  }

  private flush(): void {
    this.timer = undefined;
    const now = performance.now();
    let delivered = 0;
    while (!this.closed && this.head < this.queue.length && this.queue[this.head].at <= now) {
      const { data } = this.queue[this.head++];
      if (data === null) {
        this.dst.end();
        continue;
      }
      delivered += data.length;
      const n = this.meter.admit(data.length);
      if (n > 0 && !this.dst.write(n < data.length ? data.subarray(0, n) : data)) {
        this.blockedByDst = true;
        this.src.pause();
      }
      this.meter.written?.(); // may reset every connection, this one included
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.link.queued -= delivered;
    if (!this.closed) this.arm(now);
    this.link.release();
  }

  /** Resumes reading the source unless the link is full or the destination has not drained. */
  maybeResume(): void {
    if (this.closed || this.blockedByDst) return;
    if (this.link.full) {
      this.link.waiting.add(this);
      return;
    }
    this.src.resume();
  }

  /** Drops everything still queued (the connection is gone). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    let dropped = 0;
    for (let i = this.head; i < this.queue.length; i++) dropped += this.queue[i].data?.length ?? 0;
    this.queue.length = 0;
    this.head = 0;
    this.link.queued -= dropped;
    this.link.waiting.delete(this);
    this.link.release();
  }
}

/** Closes a socket with a TCP reset (as a broken link would look to the peer), or destroys it if it has no handle yet. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Starts a proxy on 127.0.0.1 (ephemeral port) forwarding to `target` through an emulated WAN link. */
export async function startWanProxy(target: { host: string; port: number }, opts: WanOptions): Promise<WanProxy> {
  const { rttMs, mbitPerSec, cutAfterBytes, handshakeRtts = 1 } = opts;
  if (!(rttMs >= 0)) throw new RangeError(`rttMs must be >= 0, got ${rttMs}`);
  if (mbitPerSec !== undefined && !(mbitPerSec > 0)) throw new RangeError(`mbitPerSec must be > 0, got ${mbitPerSec}`);
  if (!(handshakeRtts >= 0)) throw new RangeError(`handshakeRtts must be >= 0, got ${handshakeRtts}`);

  const bytesPerMs = mbitPerSec === undefined ? undefined : (mbitPerSec * 1e6) / 8 / 1000;
  const window = bytesPerMs === undefined ? UNLIMITED_WINDOW : Math.max(MIN_WINDOW, Math.ceil(bytesPerMs * rttMs));
  const up = new Link(rttMs / 2, bytesPerMs, window);
  const down = new Link(rttMs / 2, bytesPerMs, window);
  const stats = { connections: 0, bytesUp: 0, bytesDown: 0 };
  const open = new Set<() => void>(); // one reset function per live connection
  let cutPending = cutAfterBytes !== undefined;

  const cutAll = (): void => {
    cutPending = false;
    for (const kill of [...open]) kill();
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    stats.connections++;
    const accepted = performance.now();
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const pipes: Pipe[] = [];
    let done = false;
    const kill = (): void => {
      if (done) return;
      done = true;
      open.delete(kill);
      for (const p of pipes) p.close();
      reset(client);
      reset(upstream);
    };
    open.add(kill);

    pipes.push(
      new Pipe(client, upstream, up, accepted + handshakeRtts * rttMs + up.delayMs, {
        admit: (n) => {
          const allowed = cutPending ? Math.min(n, cutAfterBytes! - stats.bytesUp) : n;
          stats.bytesUp += allowed;
          return allowed;
        },
        written: () => {
          if (cutPending && stats.bytesUp >= cutAfterBytes!) cutAll();
        },
      }),
      new Pipe(upstream, client, down, accepted + (handshakeRtts * rttMs) / 2 + down.delayMs, {
        admit: (n) => {
          stats.bytesDown += n;
          return n;
        },
      }),
    );

    // A socket that errors, or closes before its peer sent everything (no 'end' seen), takes the other down with it.
    // A clean close (end received and sent) leaves the other side to deliver what is still queued for it.
    const watch = (socket: net.Socket): void => {
      let ended = false;
      socket.on('end', () => {
        ended = true;
      });
      socket.on('error', kill);
      socket.on('close', (hadError) => {
        if (hadError || !ended) kill();
        else if (client.destroyed && upstream.destroyed) {
          done = true;
          open.delete(kill);
        }
      });
    };
    watch(client);
    watch(upstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    url: (scheme = 'http') => `${scheme}://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const kill of [...open]) kill();
      }),
  };
}
