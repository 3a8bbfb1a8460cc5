import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { Context } from "../../context/index.js";
import { sessionCookie } from "../console/sessions.js";
import { HookwardenError } from "../../errors/index.js";
import { findBucket } from "../../ingress/buckets.js";
import type { TailEntry, TailHub } from "../../ingress/tail.js";
import { iso } from "../schemas.js";
import { route } from "../contract/index.js";

/** Streams one caller (a console session, else an API token) may hold open at once. */
export const STREAMS_PER_CALLER = 4;
/** Streams the node holds open at once, all callers together. */
export const STREAMS_PER_NODE = 1000;

/** Bytes of events a stream may have waiting for a slow reader. */
const MAX_BUFFERED = 1024 * 1024;

export const STREAM_URL = "/api/v1/bucket/:bucket_id/request/stream";

/**
 * `GET /api/v1/bucket/{id}/request/stream`: the bucket's live tail as Server-Sent Events (the
 * WHATWG HTML "event stream" format: `event:`/`id:`/`data:` lines, a blank line per event; a line
 * starting with `:` is a comment, used as the heartbeat that keeps proxies from cutting an idle
 * stream). Each `request` event carries one row as JSON, again whenever its forward outcome
 * changes. Hand-written: the format is four kinds of lines, and a plugin would only add a
 * dependency between this and Fastify's next major.
 *
 * Every open stream is ended when the server closes (`preClose`), so shutdown never waits on one.
 */
export function bucketStreamRoutes(app: FastifyInstance, ctx: Context, deps: { tail: TailHub; heartbeatMs?: number }): void {
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const byCaller = new Map<string, number>();
  const open = new Set<PassThrough>();
  let total = 0;
  app.addHook("preClose", async () => {
    for (const s of open) s.end();
  });

  route(
    app,
    {
      method: "GET",
      url: STREAM_URL,
      operationId: "hookwarden.request.stream",
      summary: "The bucket's live tail: received and rejected requests as they arrive, with verification and forward outcome (Server-Sent Events)",
      description:
        "`text/event-stream`. First the newest rows, then each new or changed row as an `event: request` whose `data` is an InboundRequestSummary with `verification` and `forward`. Comments (`: ping`) every 15 s. At most 4 streams per caller (429).",
      tag: "Inbound Request",
      responses: { 200: { description: "An event stream", contentType: "text/event-stream" }, 429: { description: "Too many open streams for this caller" } },
    },
    async (req, reply) => {
      const bucket = await findBucket(ctx, req.orgId, req.params.bucket_id);
      // A console session is keyed by its session id alone (hashed: the key is kept in memory;
      // other cookies beside it change nothing), a script by its token.
      const session = sessionCookie(req);
      const caller = session !== undefined ? `s:${createHash("sha256").update(session).digest("base64url")}` : `t:${req.tokenId}`;
      const mine = byCaller.get(caller) ?? 0;
      if (mine >= STREAMS_PER_CALLER) throw new HookwardenError("E_TOO_MANY_STREAMS", 429, `At most ${STREAMS_PER_CALLER} live tails may be open at once; close one`);
      if (total >= STREAMS_PER_NODE) throw new HookwardenError("E_UNAVAILABLE", 503, "Too many live tails are open on this node; retry shortly", { retryAfter: 5 });
      byCaller.set(caller, mine + 1);
      total++;

      const out = new PassThrough();
      open.add(out);
      let unwatch: (() => void) | undefined;
      let heartbeat: NodeJS.Timeout | undefined;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        open.delete(out);
        clearInterval(heartbeat);
        unwatch?.();
        total--;
        const n = (byCaller.get(caller) ?? 1) - 1;
        if (n <= 0) byCaller.delete(caller);
        else byCaller.set(caller, n);
        out.end();
      };
      reply.raw.once("close", finish);
      out.once("end", finish);
      const write = (entries: readonly TailEntry[]) => {
        if (done) return;
        // Oldest first, so a client that prepends shows the newest on top.
        for (const e of [...entries].reverse()) out.write(`event: request\nid: ${e.id}\ndata: ${JSON.stringify(entryOut(e))}\n\n`);
        // A client that does not read would have the node buffer its events without end: past
        // 1 MiB the stream is closed (a browser's EventSource reconnects and starts afresh).
        if (out.writableLength + reply.raw.writableLength > MAX_BUFFERED) {
          finish();
          reply.raw.destroy();
        }
      };
      out.write(`retry: 3000\n: ${bucket.id}\n\n`);
      try {
        unwatch = await deps.tail.watch(bucket, write);
      } catch (err) {
        finish();
        throw err;
      }
      if (done) unwatch();
      heartbeat = setInterval(() => out.write(": ping\n\n"), heartbeatMs);
      heartbeat.unref();
      return reply
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-store")
        // nginx would buffer the stream otherwise.
        .header("x-accel-buffering", "no")
        .send(out);
    },
  );
}

function entryOut(e: TailEntry) {
  return {
    id: e.id,
    inputId: e.inputId,
    receivedAt: iso(e.receivedAt),
    size: e.size,
    statusCode: e.statusCode,
    status: e.status,
    method: e.method,
    rejectionCode: e.rejectionCode,
    rejectionReason: e.rejectionReason,
    verification: e.verification,
    forward: e.forward,
  };
}
