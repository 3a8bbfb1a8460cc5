import WebSocket from "ws";
import type { AgentLink, DialEvents, DialOptions, LinkEvents } from "./link.js";
import { AGENT_PATH } from "./protocol.js";

/** An open WebSocket as an `AgentLink`; liveness is WebSocket ping/pong (RFC 6455 §5.5.2). */
export function wsLink(ws: WebSocket): AgentLink {
  return {
    listen(events: LinkEvents) {
      ws.on("pong", () => events.alive());
      ws.on("ping", () => events.alive());
      ws.on("message", (data, isBinary) => events.frame(isBinary ? Buffer.from(data as Buffer).toString("utf8") : String(data)));
      ws.on("close", (code, reason) => events.close(code, reason.toString()));
      ws.on("error", (err) => events.error(err));
    },
    send: (text, cb) => ws.send(text, cb),
    ping: () => ws.ping(),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
  };
}

/** The agent side over WebSocket: `GET /agent/connect` with Basic credentials (ws:// or wss://). */
export function dialWebSocket(opts: DialOptions, events: DialEvents): AgentLink {
  const url = new URL(AGENT_PATH, opts.server.replace(/^http/, "ws"));
  url.searchParams.set("buckets", opts.buckets.join(","));
  if (opts.check) url.searchParams.set("check", "1");
  const ws = new WebSocket(url, {
    headers: { authorization: `Basic ${Buffer.from(`${opts.key}:${opts.secret}`).toString("base64")}` },
    maxPayload: opts.maxFrameBytes,
    perMessageDeflate: false,
    handshakeTimeout: opts.handshakeTimeoutMs,
    // wss:// verifies the server's certificate (against `ca` when given); never turned off.
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  ws.on("unexpected-response", (_req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      events.refused(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"));
      ws.terminate();
    };
    // At most 4 KB of the answer (a proxy's error page may be large): enough for `{code, detail}`.
    res.on("data", (c: Buffer) => {
      if (size < 4096) chunks.push(c.subarray(0, 4096 - size));
      size += c.length;
    });
    res.once("end", settle);
    res.once("error", settle);
  });
  ws.on("open", () => events.open());
  const link = wsLink(ws);
  link.listen(events);
  return link;
}
