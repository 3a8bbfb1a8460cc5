/**
 * One agent connection, whatever carries it (WebSocket or a gRPC bidirectional stream): the hub
 * and the agent client are written against this alone, and each transport is a thin adapter.
 * Frames are the protocol's JSON text (protocol.ts). Close codes are the WebSocket ones
 * (`CLOSE`, RFC 6455 §7.4.1) on both transports: gRPC carries them in a trailer.
 */
export interface LinkEvents {
  /** One protocol frame, as received (JSON text; parsing and checking it is the caller's job). */
  frame(text: string): void;
  /** The peer answered a heartbeat (or sent one): it is alive. */
  alive(): void;
  /** Called once, however the link ended. 1006: dropped without a close (RFC 6455 §7.1.5). */
  close(code: number, reason: string): void;
  error(err: Error): void;
}

export interface AgentLink {
  /** Starts delivering events; call once, right after the link is made. */
  listen(events: LinkEvents): void;
  /** `cb` gets an error when the frame could not be written. */
  send(text: string, cb?: (err?: Error) => void): void;
  /** A heartbeat; the peer's answer arrives as `alive`. */
  ping(): void;
  close(code: number, reason: string): void;
  /** Drops the link at once, without telling the peer (a dead or hostile one). */
  terminate(): void;
  readonly open: boolean;
}

/** What the agent side additionally learns while a link is being made. */
export interface DialEvents extends LinkEvents {
  /** The transport is up (before the hello frame). */
  open(): void;
  /**
   * The gateway answered the handshake with a refusal: `status` as HTTP (401, 403, 503...);
   * `detail` is the server's text, still to be sanitised.
   */
  refused(status: number, detail: string): void;
}

export interface DialOptions {
  /** The gateway: http(s):// or ws(s):// for WebSocket, grpc(s):// for gRPC. */
  server: string;
  key: string;
  secret: string;
  buckets: string[];
  check: boolean;
  maxFrameBytes: number;
  ca?: Buffer;
  handshakeTimeoutMs: number;
}

export type Dialer = (opts: DialOptions, events: DialEvents) => AgentLink;
