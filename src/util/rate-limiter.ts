/**
 * Per-endpoint token buckets for the endpoint's `rateLimit` (messages per second), with a burst of
 * one second's worth. Kept in memory: with several nodes each enforces the limit separately
 * (documented in README, as in Svix's self-hosted server).
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes a token; returns 0 when allowed, else how many ms until one is available. */
  take(key: string, perSecond: number, now: number, burst: number = perSecond): number {
    const b = this.#buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / perSecond) * 1000);
  }
}
