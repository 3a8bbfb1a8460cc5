import { inspect } from "node:util";

const MASK = "******";

/**
 * A value that must never be printed: `String(s)`, `JSON.stringify(s)`, template literals and
 * `util.inspect` (so pino and console) all show `******`. Only `reveal()` gives the value, and
 * only the code that signs, encrypts or sends a request calls it.
 *
 * @example
 * const s = new SecretValue("whsec_abc");
 * `${s}` === "******"; s.reveal() === "whsec_abc";
 */
export class SecretValue {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }

  static readonly MASK = MASK;
}
