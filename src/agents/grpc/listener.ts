import { Server, ServerCredentials, status as Status, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Context } from "../../context/index.js";
import type { AgentHub } from "../hub.js";
import { maxFrameBytes } from "../protocol.js";
import { GRPC_METHOD, decodeFrame, encodeFrame } from "./frame-codec.js";
import { routeGrpcLogs } from "./grpc-log.js";
import { grpcServerLink } from "./server-link.js";

/** Protobuf overhead of one `Frame` around its JSON: a tag byte and a length varint. */
const FRAME_OVERHEAD = 16;

export interface GrpcAgentListener {
  /** `grpc://host:port`, or `grpcs://` with TLS: what `hookwarden agent --server` takes. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The agents' gRPC port: one `Connect` bidirectional stream per agent, authenticated from its
 * metadata by the same hub as WebSocket agents before any frame is read (frames an unauthenticated
 * stream sends are never looked at: the stream ends UNAUTHENTICATED). Messages over the frame size
 * limit end the stream with RESOURCE_EXHAUSTED (grpc-js checks before decoding).
 */
export async function listenGrpc(ctx: Context, hub: AgentHub, opts: { host: string; port: number; tls: { cert: Buffer; key: Buffer } | undefined }): Promise<GrpcAgentListener> {
  const { logger } = ctx;
  routeGrpcLogs(logger);
  const server = new Server({
    "grpc.max_receive_message_length": maxFrameBytes(ctx.config.maxPayloadSize) + FRAME_OVERHEAD,
    "grpc.max_send_message_length": -1,
    // A connection with no stream (never authenticated, or its agent gone) is closed after this.
    "grpc.max_connection_idle_ms": 60_000,
  });
  server.addService(
    {
      connect: {
        path: GRPC_METHOD,
        requestStream: true,
        responseStream: true,
        requestSerialize: encodeFrame,
        requestDeserialize: decodeFrame,
        responseSerialize: encodeFrame,
        responseDeserialize: decodeFrame,
      },
    },
    {
      connect: (call: ServerDuplexStream<string, string>) => {
        const first = (key: string) => {
          const v = call.metadata.get(key)[0];
          return typeof v === "string" ? v : undefined;
        };
        hub.authorize(first("authorization"), first("hookwarden-buckets")).then(
          (admission) => {
            if (!admission.ok) {
              // The same `{code, detail}` a refused WebSocket upgrade gets as its body.
              call.emit("error", { code: admission.status === 401 ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED, details: JSON.stringify({ code: admission.code, detail: admission.detail }) });
              return;
            }
            if (call.cancelled) return;
            hub.admit(grpcServerLink(call), admission, first("hookwarden-check") === "1");
          },
          (err: unknown) => {
            logger.error({ err }, "agent stream authentication failed");
            call.emit("error", { code: Status.UNAVAILABLE, details: "internal error" });
          },
        );
      },
    },
  );
  const credentials = opts.tls ? ServerCredentials.createSsl(null, [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }], false) : ServerCredentials.createInsecure();
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${opts.port}`, credentials, (err, p) => (err ? reject(bindError(err, opts.host, opts.port)) : resolve(p))),
  );
  const shown = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : host;
  const url = `${opts.tls ? "grpcs" : "grpc"}://${shown}:${port}`;
  logger.info({ url }, "agents may connect over gRPC");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        // The hub has closed every stream by now; a straggler must not hold the stop.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/**
 * grpc-js reports a failed bind only as text ("No address added out of total 1 resolved errors:
 * [listen EADDRINUSE: …]"); the errno, address, port and flag are put back so the CLI explains
 * it in one line, as it does for the API port.
 */
function bindError(err: Error, address: string, port: number): Error {
  const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(err.message)?.[1];
  return code === undefined ? err : Object.assign(new Error(err.message, { cause: err }), { code, syscall: "listen", address, port, flag: "--grpc-port" });
}
