import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { listAudit, type AuditLog } from "../../audit/index.js";
import type { Context } from "../../context/index.js";
import { clientIp, parseCidrs } from "../../ingress/client-ip.js";
import { iso } from "../schemas.js";
import { listOf, named, route, dateTime } from "../contract/index.js";

export const AuditEntry = named(
  "AuditEntry",
  z.object({
    id: z.string(),
    seq: z.number().int(),
    at: dateTime,
    tokenId: z.string().nullable(),
    tokenName: z.string().nullable(),
    action: z.string(),
    resourceId: z.string().nullable(),
    status: z.number().int(),
    clientIp: z.string().nullable(),
  }),
);

const WRITE_OK = (method: string, status: number) => method !== "GET" && method !== "HEAD" && status >= 200 && status < 300;
/**
 * Publishing is the data plane, not a change to the installation: thousands a second, each already
 * kept as a message row with its attempts. Auditing each would serialise every publish on the chain.
 */
const NOT_AUDITED = new Set(["POST /api/v1/app/:app_id/msg"]);

/**
 * Records every change made through the API: who (token id and name), what (method, route pattern,
 * resource id), when, from which address. Never a body or a secret. Also `GET /api/v1/audit`.
 */
export function auditRoutes(app: FastifyInstance, ctx: Context, audit: AuditLog): void {
  const trusted = parseCidrs(ctx.config.trustedProxies);
  const created = new WeakMap<object, string>();
  app.addHook("onSend", (req, reply, payload, done) => {
    // The id of what a POST created: the first "id" of the JSON answer (ids are never secrets).
    // Not for a publish: that answer holds the caller's payload and is never audited.
    if (req.method === "POST" && WRITE_OK(req.method, reply.statusCode) && typeof payload === "string" && !NOT_AUDITED.has(`POST ${req.routeOptions.url ?? "?"}`)) {
      const m = /"id":"([^"\\]{1,256})"/.exec(payload);
      if (m) created.set(req, m[1]!);
    }
    done(null, payload);
  });
  app.addHook("onResponse", (req, reply, done) => {
    const action = `${req.method} ${req.routeOptions.url ?? "?"}`;
    if (WRITE_OK(req.method, reply.statusCode) && req.tokenId !== undefined && !NOT_AUDITED.has(action)) {
      const params = Object.values((req.params ?? {}) as Record<string, unknown>).filter((v): v is string => typeof v === "string");
      void audit
        .append({
          orgId: req.orgId,
          tokenId: req.tokenId,
          tokenName: req.apiToken.name,
          action,
          resourceId: created.get(req) ?? params.at(-1) ?? null,
          status: reply.statusCode,
          clientIp: clientIp(req.raw.socket.remoteAddress ?? "", req.headers["x-forwarded-for"] as string | undefined, trusted),
          at: ctx.clock.now(),
        })
        .catch(() => {});
    }
    done();
  });
  const query = z
    .object({
      tokenId: z.string().max(256).optional(),
      action: z.string().max(256).optional(),
      since: z.string().datetime({ offset: true }).optional(),
      until: z.string().datetime({ offset: true }).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    })
    .strict();
  route(app, { method: "GET", url: "/api/v1/audit", operationId: "hookwarden.audit.list", summary: "Read the audit log (every change made through the API)", tag: "Audit", query, responses: { 200: { description: "Entries, newest first", schema: listOf(AuditEntry) } } }, async (req, _reply, { query: q }) => {
    const rows = await listAudit(ctx.store.db, {
      orgId: req.orgId,
      tokenId: q.tokenId,
      action: q.action,
      since: q.since === undefined ? undefined : Date.parse(q.since),
      until: q.until === undefined ? undefined : Date.parse(q.until),
      limit: q.limit,
    });
    const data = rows.map((r) => ({ id: r.id, seq: r.seq, at: iso(r.at), tokenId: r.token_id, tokenName: r.token_name, action: r.action, resourceId: r.resource_id, status: r.status, clientIp: r.client_ip }));
    return { data, iterator: null, prevIterator: null, done: true };
  });
}
