/**
 * The bench's webhook receiver, run as its own process (`fork`) so that neither the gateway nor
 * the load generator shares its event loop. It answers 200 as soon as a request's body has
 * arrived and, while tracking, records the first arrival time of every `webhook-id`.
 *
 * IPC protocol (parent → child): `{ type: "track", n }` starts a fresh tracking window (answered
 * `tracking` at once) and asks for a `done` message once `n` distinct ids arrived;
 * `{ type: "arrivals" }` returns them.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export type ToReceiver = { type: "track"; n: number } | { type: "arrivals" } | { type: "stop" };
export type FromReceiver =
  | { type: "ready"; port: number }
  | { type: "tracking"; n: number }
  | { type: "done"; first: number; last: number; distinct: number; total: number }
  | { type: "arrivals"; ids: string[]; at: number[]; total: number };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

let arrivals = new Map<string, number>();
let total = 0;
let target = Infinity;
let first = 0;
let last = 0;

function send(msg: FromReceiver): void {
  process.send!(msg);
}

const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const at = now();
    const webhookId = req.headers["webhook-id"];
    // A fan-out sends one message id to many endpoints (`/hook/N`): each copy counts there.
    const id = typeof webhookId === "string" && req.url?.startsWith("/hook/") ? `${webhookId}@${req.url}` : webhookId;
    total++;
    if (typeof id === "string" && !arrivals.has(id)) {
      arrivals.set(id, at);
      if (arrivals.size === 1) first = at;
      last = at;
      if (arrivals.size === target) {
        target = Infinity;
        send({ type: "done", first, last, distinct: arrivals.size, total });
      }
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" }).end("ok");
  });
});
server.keepAliveTimeout = 30_000;

process.on("message", (msg: ToReceiver) => {
  if (msg.type === "track") {
    arrivals = new Map();
    total = 0;
    first = 0;
    last = 0;
    target = msg.n;
    // Acknowledged before the parent sends anything: a request that overtook the IPC message
    // would otherwise count in the previous window, and the new one would never be done.
    send({ type: "tracking", n: msg.n });
  } else if (msg.type === "arrivals") {
    send({ type: "arrivals", ids: [...arrivals.keys()], at: [...arrivals.values()], total });
  } else {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
// The parent went away (crashed or killed): never outlive it.
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => send({ type: "ready", port: (server.address() as AddressInfo).port }));
