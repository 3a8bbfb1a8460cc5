import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import type { AddressPolicy } from "../net/ssrf.js";
import type { BrokerCredentials } from "./kind.js";

/** What every broker kind is built with (by the composition root). */
export interface BrokerKindOptions {
  /** The SSRF policy of HTTP deliveries. */
  policy: AddressPolicy;
  connectTimeoutMs: number;
  /** How connections name themselves to the broker (RabbitMQ `connection_name`, NATS name, Redis CLIENT SETNAME). */
  clientName?: string;
}

/** At most this many broker connections per kind; the least recently used one is closed first. */
export const MAX_CONNECTIONS = 64;

/**
 * Resolves a broker host through the same SSRF policy as HTTP deliveries and returns the one
 * address to connect to (normalised, so `2130706433` becomes `127.0.0.1`). The client library is
 * then given this IP, never the name: a second lookup could answer differently (DNS rebinding).
 */
export async function vetHost(policy: AddressPolicy, host: string): Promise<string> {
  const { address } = await policy.resolve(host);
  return ipaddr.parse(address).toString();
}

/** A pool key that does not hold the credentials themselves. */
export function poolKey(parts: readonly (string | number)[], credentials: BrokerCredentials | undefined): string {
  const creds = credentials ? createHash("sha256").update(JSON.stringify([credentials.username ?? null, credentials.password ?? null, credentials.token ?? null])).digest("base64url") : "-";
  return JSON.stringify([...parts, creds]);
}

/**
 * Connections shared by every delivery to the same (broker address, vhost/db, credentials):
 * opened on first use, dropped when the broker closes them (the next delivery opens a new one),
 * bounded in number, and closed at shutdown.
 */
export class ConnectionPool<C> {
  readonly #entries = new Map<string, Promise<C>>();
  readonly #close: (conn: C) => Promise<void>;
  #closed = false;

  constructor(close: (conn: C) => Promise<void>) {
    this.#close = close;
  }

  /** The pooled connection for `key`, opening it with `open` (given a `drop` to call on close). */
  get(key: string, open: (drop: () => void) => Promise<C>): Promise<C> {
    if (this.#closed) return Promise.reject(new Error("shutting down"));
    const existing = this.#entries.get(key);
    if (existing) {
      // Most recently used last, so eviction takes the idle end.
      this.#entries.delete(key);
      this.#entries.set(key, existing);
      return existing;
    }
    const drop = () => {
      if (this.#entries.get(key) === p) this.#entries.delete(key);
    };
    const p = open(drop);
    p.catch(drop);
    this.#entries.set(key, p);
    while (this.#entries.size > MAX_CONNECTIONS) {
      const [oldKey, oldest] = this.#entries.entries().next().value as [string, Promise<C>];
      this.#entries.delete(oldKey);
      void oldest.then((c) => this.#close(c)).catch(() => undefined);
    }
    return p;
  }

  get size(): number {
    return this.#entries.size;
  }

  async closeAll(): Promise<void> {
    this.#closed = true;
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(all.map((p) => p.then((c) => this.#close(c)).catch(() => undefined)));
  }
}
