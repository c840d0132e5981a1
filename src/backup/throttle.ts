// An average-rate limiter: callers take bytes, and wait while they are ahead of the rate.

const BURST_SECONDS = 0.25;

export class Throttle {
  private start = 0;
  private taken = 0;

  constructor(private readonly bytesPerSecond: number, private readonly now = () => Date.now()) {}

  /** Counts `bytes` and returns how long to wait (ms) to be back within the rate since the first take (a quarter second of burst allowed). */
  delayFor(bytes: number): number {
    if (!this.start) this.start = this.now();
    this.taken += bytes;
    const due = this.start + (this.taken / this.bytesPerSecond - BURST_SECONDS) * 1000;
    return Math.max(0, due - this.now());
  }

  async take(bytes: number): Promise<void> {
    const wait = this.delayFor(bytes);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
