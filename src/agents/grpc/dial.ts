import { Client, Metadata, credentials, status as Status, type ClientDuplexStream, type StatusObject } from "@grpc/grpc-js";
import type { AgentLink, DialEvents, DialOptions } from "../link.js";
import { CLOSE } from "../protocol.js";
import { GRPC_METHOD, decodeFrame, encodeFrame } from "./frame-codec.js";
import { PING, PONG, closeCodeOf } from "./status.js";

/**
 * The agent side over gRPC (`grpc://host:port`, or `grpcs://` verified like `wss://`, against
 * `ca` when given). Each dial has a channel of its own with a private subchannel pool: grpc-js
 * otherwise shares one TCP connection between channels, and a reconnect after a dead (frozen)
 * connection would open its new stream on that same dead connection.
 */
export function dialGrpc(opts: DialOptions, events: DialEvents): AgentLink {
  const u = new URL(opts.server);
  const tls = u.protocol === "grpcs:";
  const target = `${u.hostname}:${u.port || (tls ? "443" : "80")}`;
  const client = new Client(target, tls ? credentials.createSsl(opts.ca ?? null) : credentials.createInsecure(), {
    "grpc.max_receive_message_length": opts.maxFrameBytes + 16,
    "grpc.max_send_message_length": -1,
    "grpc.use_local_subchannel_pool": 1,
    "grpc.enable_retries": 0,
  });
  const md = new Metadata();
  md.set("authorization", `Basic ${Buffer.from(`${opts.key}:${opts.secret}`).toString("base64")}`);
  md.set("hookwarden-buckets", opts.buckets.join(","));
  if (opts.check) md.set("hookwarden-check", "1");
  const call: ClientDuplexStream<string, string> = client.makeBidiStreamRequest(GRPC_METHOD, encodeFrame, decodeFrame, md, {});
  let heard = false;
  let ended = false;
  const end = (code: number, reason: string) => {
    if (ended) return;
    ended = true;
    clearTimeout(handshake);
    client.close();
    events.close(code, reason);
  };
  // The WebSocket client's handshakeTimeout: a gateway that accepts the connection and says nothing.
  const handshake = setTimeout(() => {
    if (heard || ended) return;
    events.error(new Error(`no answer from the gateway within ${opts.handshakeTimeoutMs} ms`));
    call.cancel();
    end(1006, "handshake timeout");
  }, opts.handshakeTimeoutMs);
  call.on("data", (text: string) => {
    if (ended) return;
    if (!heard) {
      heard = true;
      clearTimeout(handshake);
      events.open();
    }
    if (text === PING) {
      call.write(PONG);
      events.alive();
    } else if (text === PONG) events.alive();
    else events.frame(text);
  });
  call.on("error", () => {}); // the same end arrives as "status", below
  call.on("status", (s: StatusObject) => {
    if (ended) return;
    if (!heard && (s.code === Status.UNAUTHENTICATED || s.code === Status.PERMISSION_DENIED)) {
      events.refused(s.code === Status.UNAUTHENTICATED ? 401 : 403, s.details);
    } else if (!heard && s.code !== Status.OK) {
      // Unreachable, TLS refused, not a Hookwarden port: what the operator needs to see.
      const detail = pickFirstDetail(s.details);
      events.error(Object.assign(new Error(detail || Status[s.code]), { code: /\b(E[A-Z]{3,})\b/.exec(detail)?.[1] ?? Status[s.code] }));
    }
    end(heard ? closeCodeOf(s.code, s.metadata) : 1006, s.details);
  });
  return {
    listen: () => {}, // events were given to the dialer
    send(text, cb) {
      if (ended) return cb?.(new Error("link closed"));
      call.write(text, (err: Error | null | undefined) => cb?.(err ?? undefined));
    },
    ping: () => {
      if (!ended) call.write(PING);
    },
    close(code) {
      if (ended) return;
      // A normal close half-closes: the gateway ends the stream once it has seen it.
      if (code === CLOSE.normal) call.end();
      else {
        call.cancel();
        end(code, "closed by the agent");
      }
    },
    terminate() {
      if (ended) return;
      call.cancel();
      end(1006, "dropped");
    },
    get open() {
      return heard && !ended;
    },
  };
}

/**
 * The socket's own error out of grpc-js's pick-first wording ("No connection established. Last
 * error: Error: connect ECONNREFUSED 127.0.0.1:7443. Resolution note: "), so an unreachable
 * gateway reads as it does over WebSocket: "ECONNREFUSED connect ECONNREFUSED 127.0.0.1:7443".
 */
function pickFirstDetail(details: string): string {
  const m = /^No connection established\. Last error: (?:Error: )?(.*?)\.? Resolution note: ?(.*)$/s.exec(details);
  if (!m) return details;
  return m[2] ? `${m[1]} (${m[2]})` : m[1]!;
}
