import { Svix as Svix1 } from "svix";
import { Svix as Svix2 } from "svix2";

/**
 * Both majors of the official client, so every parity test runs through the code users have:
 * svix 1.99.1 (`filterTypes`, `rateLimit`, `update`) and svix 2.5.0 (`eventTypes`,
 * `throttleRate`, `upsert`). svix 2.5.0 declares `engines: node >=22` but runs on Node 20
 * (it only needs global fetch); if a future Node 20 run cannot load it, the static import above
 * fails the suite loudly instead of skipping it.
 */
export interface SvixClientCase {
  name: string;
  major: 1 | 2;
  /**
   * The client, typed loosely: the two majors name the same operation's options differently,
   * and the tests pass each major the names it really sends.
   */
  make: (token: string, serverUrl: string) => any;
}

export const SVIX_CLIENTS: SvixClientCase[] = [
  { name: "svix 1.99.1", major: 1, make: (token, serverUrl) => new Svix1(token, { serverUrl }) },
  { name: "svix 2.5.0", major: 2, make: (token, serverUrl) => new Svix2(token, { serverUrl }) },
];
