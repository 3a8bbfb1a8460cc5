import type { Socket } from "node:net";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Config } from "../config/index.js";
import { inRanges, parseCidrs } from "../ingress/client-ip.js";
import type { Logger } from "../logger/index.js";
import { ClientDrops } from "./client-drops.js";

/**
 * Fastify options bounding every incoming request in time. Node's defaults leave a body that stops
 * arriving open forever (`requestTimeout` and `connectionTimeout` 0 in Fastify): one client held
 * ~480 stalled `POST /in/<uuid>` sockets and `/health` stopped answering.
 *
 * Node checks `requestTimeout`/`headersTimeout` every `connectionsCheckingInterval` (30 s by
 * default, so a 30 s timeout fired after up to 60 s): a quarter of the timeout, at most 1 s.
 */
export function timeoutOptions(config: Config): { requestTimeout: number; keepAliveTimeout: number; connectionTimeout: number; http: { connectionsCheckingInterval: number } } {
  return {
    requestTimeout: config.inboundRequestTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
    // The socket idle timeout would also cut a wait-mode answer that takes its time: body
    // idleness is bounded by the hooks of `guardConnections` instead.
    connectionTimeout: 0,
    http: { connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(Math.min(config.inboundRequestTimeout, config.inboundHeadersTimeout) / 4))) },
  };
}

/** True when the client went away (or was cut off) before its request was read: not a server fault. */
export function isClientAbort(err: unknown, req: FastifyRequest): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return req.raw.aborted || req.raw.socket?.destroyed === true || code === "ECONNRESET" || code === "ECONNABORTED" || code === "ERR_STREAM_PREMATURE_CLOSE";
}

/**
 * Connection caps, the headers and body-idle timeouts, and aggregated logging of dropped clients.
 * Past `maxConnections` Node closes new connections at once; past `maxConnectionsPerIp` from one
 * address (not a trusted proxy, which speaks for many clients) so does this, so one client cannot
 * take every slot and `/health` and the API keep answering everybody else.
 */
export function guardConnections(app: FastifyInstance, config: Config, logger: Logger): void {
  const server = app.server;
  const drops = new ClientDrops(logger);
  server.headersTimeout = Math.min(config.inboundHeadersTimeout, config.inboundRequestTimeout);
  server.maxConnections = config.maxConnections;
  server.on("drop", (data?: { remoteAddress?: string }) => drops.record("refused", data?.remoteAddress));

  const perIp = config.maxConnectionsPerIp;
  if (perIp > 0) {
    const trusted = parseCidrs(config.trustedProxies);
    const open = new Map<string, number>();
    server.on("connection", (socket: Socket) => {
      const ip = socket.remoteAddress;
      if (ip === undefined || inRanges(ip, trusted)) return;
      const n = (open.get(ip) ?? 0) + 1;
      if (n > perIp) {
        drops.record("refused", ip);
        socket.destroy();
        return;
      }
      open.set(ip, n);
      socket.once("close", () => {
        const left = (open.get(ip) ?? 1) - 1;
        if (left <= 0) open.delete(ip);
        else open.set(ip, left);
      });
    });
  }

  // Shutdown: Node's closeIdleConnections leaves a connection that has not sent a request yet
  // (a client's spare socket: undici opens one after an aborted response, browsers pre-connect),
  // and the close then waited for its headers timeout. Such a socket carries nothing to finish.
  const idleSinceOpen = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    idleSinceOpen.add(socket);
    socket.once("close", () => idleSinceOpen.delete(socket));
  });
  server.on("request", (req: { socket: Socket }) => idleSinceOpen.delete(req.socket));
  server.on("upgrade", (req: { socket: Socket }) => idleSinceOpen.delete(req.socket));
  app.addHook("preClose", (done) => {
    for (const socket of idleSinceOpen) socket.destroy();
    idleSinceOpen.clear();
    done();
  });

  // Timed out by Node (`requestTimeout`, `headersTimeout`): Fastify answers 408 and closes.
  const timedOut = new WeakSet<object>();
  server.on("clientError", (err: { code?: string }, socket: Socket) => {
    if (err.code !== "ERR_HTTP_REQUEST_TIMEOUT" || timedOut.has(socket)) return;
    timedOut.add(socket);
    drops.record("timeout", socket.remoteAddress);
  });

  // Body idleness: the socket's idle timer runs only while a body is being read.
  const receiving = new WeakSet<object>();
  server.on("timeout", (socket: Socket) => {
    // With a listener here Node no longer closes timed-out sockets itself (keep-alive ones too).
    if (receiving.has(socket) && !timedOut.has(socket)) {
      timedOut.add(socket);
      drops.record("timeout", socket.remoteAddress);
    }
    socket.destroy();
  });
  app.addHook("onRequest", (req, _reply, done) => {
    const h = req.headers;
    if (h["content-length"] !== undefined || h["transfer-encoding"] !== undefined) {
      receiving.add(req.raw.socket);
      req.raw.socket.setTimeout(config.inboundBodyIdleTimeout);
    }
    done();
  });
  app.addHook("preValidation", (req, _reply, done) => {
    if (receiving.delete(req.raw.socket)) req.raw.socket.setTimeout(0);
    done();
  });
  // Answered before the body was read (a 403 or 429 from the ingress's onRequest checks).
  app.addHook("onResponse", (req, _reply, done) => {
    receiving.delete(req.raw.socket);
    done();
  });
  app.addHook("onError", (req, _reply, err, done) => {
    receiving.delete(req.raw.socket);
    if (isClientAbort(err, req) && !timedOut.has(req.raw.socket)) drops.record("aborted", req.raw.socket?.remoteAddress);
    done();
  });
  app.addHook("onClose", (_app, done) => {
    drops.stop();
    done();
  });
}
