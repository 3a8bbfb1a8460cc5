import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { AgentLink, LinkEvents } from "../link.js";
import { CLOSE } from "../protocol.js";
import { PING, PONG, closeTrailer, statusFor } from "./status.js";

/**
 * An accepted gRPC stream as an `AgentLink`. The stream ends with a status whose trailer carries
 * the close code. `close` reports the end at once rather than when HTTP/2 closes the stream: a
 * frozen peer never completes that, and its pending deliveries must fail now, as over WebSocket.
 */
export function grpcServerLink(call: ServerDuplexStream<string, string>): AgentLink {
  let events: LinkEvents | undefined;
  let ended = false;
  const end = (code: number, reason: string) => {
    if (ended) return;
    ended = true;
    events?.close(code, reason);
  };
  const finish = (code: number, reason: string) => {
    if (ended || call.cancelled) return end(code, reason);
    if (code === CLOSE.normal) call.end(closeTrailer(code));
    else call.emit("error", { code: statusFor(code), details: reason, metadata: closeTrailer(code) });
    end(code, reason);
  };
  const link: AgentLink = {
    listen(e) {
      events = e;
      call.on("data", (text: string) => {
        if (ended) return;
        if (text === PING) {
          call.write(PONG);
          e.alive();
        } else if (text === PONG) e.alive();
        else e.frame(text);
      });
      // The agent half-closed: it is stopping.
      call.on("end", () => finish(CLOSE.normal, "agent stopping"));
      // Emitted whenever the HTTP/2 stream closes, including after our own status.
      call.on("cancelled", () => end(1006, "stream cancelled"));
      if (call.cancelled) queueMicrotask(() => end(1006, "stream cancelled"));
    },
    send(text, cb) {
      if (ended) return cb?.(new Error("link closed"));
      call.write(text, (err: Error | null | undefined) => cb?.(err ?? undefined));
    },
    ping: () => {
      if (!ended) call.write(PING);
    },
    close: finish,
    terminate: () => finish(1006, "dropped"),
    get open() {
      return !ended && !call.cancelled;
    },
  };
  return link;
}
