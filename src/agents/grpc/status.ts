import { Metadata, status as Status } from "@grpc/grpc-js";
import { CLOSE } from "../protocol.js";

/** The trailer that carries the WebSocket close code (protocol.ts `CLOSE`) at the end of a stream. */
export const CLOSE_TRAILER = "hookwarden-close";

/** Heartbeat frames: gRPC has no application-visible ping, so these stand in for RFC 6455 ping/pong. */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

/** The gRPC status a close code ends a stream with (a client without the trailer still learns why). */
export function statusFor(code: number): Status {
  switch (code) {
    case CLOSE.normal:
      return Status.OK;
    case CLOSE.invalid:
    case CLOSE.unsupported:
      return Status.INVALID_ARGUMENT;
    case CLOSE.policy:
      return Status.FAILED_PRECONDITION;
    case CLOSE.tooBig:
      return Status.RESOURCE_EXHAUSTED;
    case CLOSE.revoked:
      return Status.UNAUTHENTICATED;
    default:
      return Status.UNAVAILABLE;
  }
}

/** The close code of an ended stream: the trailer when the gateway set it, else from the status. */
export function closeCodeOf(code: Status, metadata: Metadata | undefined): number {
  const trailer = Number(metadata?.get(CLOSE_TRAILER)[0]);
  if (Number.isInteger(trailer) && trailer >= 1000 && trailer < 5000) return trailer;
  if (code === Status.OK) return CLOSE.normal;
  if (code === Status.RESOURCE_EXHAUSTED) return CLOSE.tooBig;
  if (code === Status.INVALID_ARGUMENT) return CLOSE.invalid;
  if (code === Status.FAILED_PRECONDITION) return CLOSE.policy;
  return 1006;
}

export function closeTrailer(code: number): Metadata {
  const md = new Metadata();
  md.set(CLOSE_TRAILER, String(code));
  return md;
}
