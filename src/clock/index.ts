/** Wall-clock milliseconds. Injected everywhere so tests can move time instead of sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/**
 * A clock that only moves when told to.
 *
 * @example
 * const clock = new FakeClock(Date.now());
 * clock.advance(5_000);
 */
export class FakeClock implements Clock {
  #t: number;

  constructor(start: number = Date.now()) {
    this.#t = start;
  }

  now(): number {
    return this.#t;
  }

  advance(ms: number): void {
    this.#t += ms;
  }

  set(t: number): void {
    this.#t = t;
  }
}
