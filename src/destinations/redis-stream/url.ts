import { brokerAddress, brokerName, queryParams, type BrokerAddress } from "../url-params.js";

export interface RedisStreamTarget extends BrokerAddress {
  db: number;
  stream: string;
  /** Trim the stream to about this many entries on each XADD (`MAXLEN ~ N`). */
  maxlen: number | undefined;
}

/**
 * `redis://host[:6379][/db]?stream=KEY[&maxlen=N]`: `XADD KEY [MAXLEN ~ N] * field value …`.
 * Keys are capped at 1024 bytes (Redis allows more; a longer name is a mistake or an attack).
 */
export function parseRedisStreamUrl(url: URL): RedisStreamTarget {
  const address = brokerAddress(url, 6379);
  let db = 0;
  if (url.pathname !== "" && url.pathname !== "/") {
    if (!/^\/\d{1,5}$/.test(url.pathname)) throw new Error("The path is the database number (/0 … /65535)");
    db = Number(url.pathname.slice(1));
    if (db > 65535) throw new Error("The database number must be at most 65535");
  }
  const q = queryParams(url, ["stream", "maxlen"]);
  const stream = q.get("stream");
  if (stream === undefined) throw new Error("stream= is required");
  brokerName("stream", stream, 1024);
  const m = q.get("maxlen");
  let maxlen: number | undefined;
  if (m !== undefined) {
    if (!/^\d{1,10}$/.test(m) || Number(m) < 1 || Number(m) > 2 ** 31 - 1) throw new Error("maxlen must be a whole number between 1 and 2147483647");
    maxlen = Number(m);
  }
  return { ...address, db, stream, maxlen };
}
