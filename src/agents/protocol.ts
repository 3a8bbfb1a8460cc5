import { z } from "zod";

/**
 * The agent protocol: JSON text frames over one WebSocket the agent opens to the server.
 * The server pushes `request` frames; the agent answers each with an `ack` carrying its local
 * destination's result. Liveness uses WebSocket ping/pong (RFC 6455 §5.5.2) in both directions.
 */
export const AGENT_PATH = "/agent/connect";
export const HEARTBEAT_MS = 15_000;

export interface HelloFrame {
  type: "hello";
  agentId: string;
  name: string;
  mode: "forward" | "tunnel";
  buckets: { id: string; name: string }[];
  heartbeatMs: number;
}

export interface RequestFrame {
  type: "request";
  /** Delivery id: the ack names it. */
  id: string;
  requestId: string;
  bucket: string;
  method: string;
  /** Path suffix after `/in/{input_id}`, appended to the agent's own destination URL. */
  path: string;
  query: string;
  headers: [string, string][];
  /** base64 of the exact request body. */
  body: string;
}

export const ackSchema = z
  .object({
    type: z.literal("ack"),
    id: z.string().min(1).max(128),
    ok: z.boolean(),
    status: z.number().int().min(0).max(999),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.string().optional(),
    error: z.string().max(1000).optional(),
    durationMs: z.number().min(0).optional(),
  })
  .strict();
export type AckFrame = z.infer<typeof ackSchema>;

/** Frames carry at most one request or response: its body base64-encoded, plus headers. */
export function maxFrameBytes(maxPayloadSize: number): number {
  return Math.ceil(maxPayloadSize * 1.37) + 256 * 1024;
}

export const helloSchema = z
  .object({
    type: z.literal("hello"),
    agentId: z.string(),
    name: z.string(),
    mode: z.enum(["forward", "tunnel"]),
    buckets: z.array(z.object({ id: z.string(), name: z.string() })),
    heartbeatMs: z.number().int().positive(),
  })
  .strict();

export const requestSchema = z
  .object({
    type: z.literal("request"),
    id: z.string().min(1).max(128),
    requestId: z.string(),
    bucket: z.string(),
    method: z.string().regex(/^[A-Z]{1,16}$/),
    path: z.string(),
    query: z.string(),
    headers: z.array(z.tuple([z.string(), z.string()])),
    body: z.string(),
  })
  .strict();

/** WebSocket close codes (RFC 6455 §7.4.1) the server and agent use. */
export const CLOSE = { normal: 1000, goingAway: 1001, unsupported: 1003, invalid: 1007, policy: 1008, tooBig: 1009, revoked: 4001 } as const;
