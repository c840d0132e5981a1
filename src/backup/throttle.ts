// An average-rate limiter: callers take bytes, and wait while they are ahead of the rate.

const BURST_SECONDS = 0.25;

export class Throttle {
  private start = 0;
  private taken = 0;

  constructor(private readonly bytesPerSecond: number, private readonly now = () => Date.now()) {}

  /** Resolves when `bytes` more fit in the rate since the first take (a quarter second of burst allowed). */
  async take(bytes: number): Promise<void> {
    if (!this.start) this.start = this.now();
    this.taken += bytes;
    const due = this.start + ((this.taken / this.bytesPerSecond) - BURST_SECONDS) * 1000;
    const wait = due - this.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
