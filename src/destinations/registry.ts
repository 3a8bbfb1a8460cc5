import type { DestinationKind } from "./kind.js";

/**
 * The destination kinds this node can deliver to, by URL scheme. Built at start-up by the
 * composition root and handed to the engine, which looks a kind up by the endpoint URL's scheme
 * and otherwise sends HTTP; the engine imports no kind.
 */
export class DestinationRegistry {
  readonly #byScheme = new Map<string, DestinationKind>();

  register(kind: DestinationKind): this {
    for (const s of kind.schemes) {
      if (this.#byScheme.has(s)) throw new Error(`Two destination kinds claim the scheme ${s}`);
      this.#byScheme.set(s, kind);
    }
    return this;
  }

  /** The kind for `url`, or `undefined` for http(s) and anything unregistered. */
  forUrl(url: string): DestinationKind | undefined {
    const colon = url.indexOf(":");
    return colon > 0 ? this.#byScheme.get(url.slice(0, colon + 1).toLowerCase()) : undefined;
  }

  get kinds(): DestinationKind[] {
    return [...new Set(this.#byScheme.values())];
  }

  async close(): Promise<void> {
    await Promise.all(this.kinds.map((k) => k.close()));
  }
}
