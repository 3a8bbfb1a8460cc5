import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { AgentHub } from "../../agents/hub.js";
import { createAgentToken, findAgentToken, listAgentTokens, revokeAgentToken, type AgentTokenRow } from "../../agents/tokens.js";
import type { Context } from "../../context/index.js";
import { HookwardenError } from "../../errors/index.js";
import { iso } from "../schemas.js";
import { parse } from "../validate.js";
import { noStore } from "../no-store.js";

const tokenIn = z.object({
  name: z.string().min(1).max(256),
  buckets: z.array(z.string().min(1)).min(1).max(100),
  mode: z.enum(["forward", "tunnel"]).default("forward"),
});

/** `/api/v1/agent-token`: credentials for agents. The secret is shown once; the mode never changes. */
export function agentTokenRoutes(app: FastifyInstance, ctx: Context, hub: AgentHub): void {
  const out = async (r: AgentTokenRow) => {
    const ids = JSON.parse(r.buckets) as string[];
    const names = await ctx.store.db.selectFrom("buckets").select(["id", "name"]).where("id", "in", ids).execute();
    const bucketName = (id: string) => names.find((n) => n.id === id)?.name ?? id;
    // Connections to this node (each node knows its own sockets).
    const connections = hub.connectionsOf(r.id).map((c) => ({ id: c.id, connectedAt: iso(c.connectedAt), buckets: c.buckets.map(bucketName) }));
    return { id: r.id, name: r.name, key: r.key, mode: r.mode, buckets: ids.map(bucketName), createdAt: iso(r.created_at), connections };
  };
  app.post("/api/v1/agent-token", async (req, reply) => {
    const { row, secret } = await createAgentToken(ctx, req.orgId, parse(tokenIn, req.body));
    return noStore(reply).status(201).send({ ...(await out(row)), secret: secret.reveal() });
  });
  app.get("/api/v1/agent-token", async (req) => {
    const data = await Promise.all((await listAgentTokens(ctx, req.orgId)).map(out));
    return { data, iterator: data.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  app.get<{ Params: { id: string } }>("/api/v1/agent-token/:id", async (req) => out(await findAgentToken(ctx, req.orgId, req.params.id)));
  app.patch<{ Params: { id: string } }>("/api/v1/agent-token/:id", async (req) => {
    const body = parse(z.object({ name: z.string().min(1).max(256).optional(), mode: z.string().optional(), buckets: z.unknown().optional() }), req.body);
    const row = await findAgentToken(ctx, req.orgId, req.params.id);
    if (body.mode !== undefined && body.mode !== row.mode) {
      throw HookwardenError.invalidField(["body", "mode"], "An agent token's mode is fixed at creation; create a new token instead");
    }
    if (body.buckets !== undefined) throw HookwardenError.invalidField(["body", "buckets"], "An agent token's buckets are fixed at creation; create a new token instead");
    if (body.name !== undefined) await ctx.store.db.updateTable("agent_tokens").set({ name: body.name }).where("id", "=", row.id).execute();
    return out({ ...row, ...(body.name !== undefined ? { name: body.name } : {}) });
  });
  app.delete<{ Params: { id: string } }>("/api/v1/agent-token/:id", async (req, reply) => {
    const row = await revokeAgentToken(ctx, req.orgId, req.params.id);
    hub.disconnectToken(row.id);
    return reply.status(204).send();
  });
}
