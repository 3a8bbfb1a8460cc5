/**
 * Protobuf wire encoding of `hookwarden.agent.v1.Frame { string json = 1; }` (agent.proto),
 * written by hand: one length-delimited field does not need a code generator or a reflection
 * library at run time.
 */
export const GRPC_METHOD = "/hookwarden.agent.v1.AgentRelay/Connect";

/** A frame that is not valid protobuf decodes to this, which is not JSON: the link closes 1007. */
export const MALFORMED = "\u0000malformed";

export function encodeFrame(json: string): Buffer {
  const body = Buffer.from(json, "utf8");
  const head: number[] = [0x0a];
  let n = body.length;
  while (n > 0x7f) {
    head.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  head.push(n);
  return Buffer.concat([Buffer.from(head), body]);
}

function varint(buf: Buffer, at: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 8; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, i + 1];
    scale *= 128;
  }
  return undefined;
}

/** The `json` field (the last one wins, as protobuf says); unknown fields are skipped. */
export function decodeFrame(buf: Buffer): string {
  let at = 0;
  let json = "";
  while (at < buf.length) {
    const key = varint(buf, at);
    if (!key) return MALFORMED;
    const [tag, next] = key;
    at = next;
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint(buf, at);
      if (!v) return MALFORMED;
      at = v[1];
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const len = varint(buf, at);
      if (!len || len[1] + len[0] > buf.length) return MALFORMED;
      if (tag >>> 3 === 1) json = buf.toString("utf8", len[1], len[1] + len[0]);
      at = len[1] + len[0];
    } else return MALFORMED;
  }
  return at === buf.length ? json : MALFORMED;
}
