import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { AgentHub } from "../../agents/hub.js";
import { createAgentToken, findAgentToken, listAgentTokens, revokeAgentToken, type AgentTokenRow } from "../../agents/tokens.js";
import type { Context } from "../../context/index.js";
import { HookwardenError } from "../../errors/index.js";
import { iso } from "../schemas.js";
import { dateTime, listOf, named, route } from "../contract/index.js";

export const AgentToken = named(
  "AgentToken",
  z.object({
    id: z.string(),
    name: z.string(),
    key: z.string(),
    mode: z.enum(["forward", "tunnel"]),
    buckets: z.array(z.string()),
    createdAt: dateTime,
    /** The agent's connections to this node (WebSocket or gRPC), with the buckets each serves. */
    connections: z.array(z.object({ id: z.string(), connectedAt: dateTime, buckets: z.array(z.string()) })),
  }),
);
const AgentTokenCreated = named("AgentTokenCreated", AgentToken.extend({ secret: z.string() }));
const tokenPatch = z.object({ name: z.string().min(1).max(256).optional(), mode: z.string().optional(), buckets: z.unknown().optional() });
const TAG = "Agent Token";
import { noStore } from "../no-store.js";

const tokenIn = z.object({
  name: z.string().min(1).max(256),
  buckets: z.array(z.string().min(1)).min(1).max(100),
  mode: z.enum(["forward", "tunnel"]).default("forward"),
});

/** `/api/v1/agent-token`: credentials for agents. The secret is shown once; the mode never changes. */
export function agentTokenRoutes(app: FastifyInstance, ctx: Context, hub: AgentHub): void {
  const out = async (r: AgentTokenRow): Promise<z.output<typeof AgentToken>> => {
    const ids = JSON.parse(r.buckets) as string[];
    const names = await ctx.store.db.selectFrom("buckets").select(["id", "name"]).where("id", "in", ids).execute();
    const bucketName = (id: string) => names.find((n) => n.id === id)?.name ?? id;
    // Connections to this node (each node knows its own sockets).
    const connections = hub.connectionsOf(r.id).map((c) => ({ id: c.id, connectedAt: iso(c.connectedAt), buckets: c.buckets.map(bucketName) }));
    return { id: r.id, name: r.name, key: r.key, mode: r.mode as "forward" | "tunnel", buckets: ids.map(bucketName), createdAt: iso(r.created_at), connections };
  };
  route(app, { method: "POST", url: "/api/v1/agent-token", operationId: "hookwarden.agent-token.create", summary: "Create an agent's credentials (the secret is shown once)", tag: TAG, body: tokenIn, responses: { 201: { description: "Created; `secret` appears only here", schema: AgentTokenCreated } } }, async (req, reply, { body }) => {
    const { row, secret } = await createAgentToken(ctx, req.orgId, body);
    return noStore(reply).status(201).send({ ...(await out(row)), secret: secret.reveal() });
  });
  route(app, { method: "GET", url: "/api/v1/agent-token", operationId: "hookwarden.agent-token.list", summary: "List agent tokens", tag: TAG, responses: { 200: { description: "The tokens", schema: listOf(AgentToken) } } }, async (req) => {
    const data = await Promise.all((await listAgentTokens(ctx, req.orgId)).map(out));
    return { data, iterator: data.at(-1)?.id ?? null, prevIterator: null, done: true };
  });
  route(app, { method: "GET", url: "/api/v1/agent-token/:id", operationId: "hookwarden.agent-token.get", summary: "Get an agent token", tag: TAG, responses: { 200: { description: "The token", schema: AgentToken } } }, async (req) => out(await findAgentToken(ctx, req.orgId, req.params.id)));
  route(app, { method: "PATCH", url: "/api/v1/agent-token/:id", operationId: "hookwarden.agent-token.patch", summary: "Rename an agent token (mode and buckets are fixed)", tag: TAG, body: tokenPatch, responses: { 200: { description: "Renamed", schema: AgentToken } } }, async (req, _reply, { body }) => {
    const row = await findAgentToken(ctx, req.orgId, req.params.id);
    if (body.mode !== undefined && body.mode !== row.mode) {
      throw HookwardenError.invalidField(["body", "mode"], "An agent token's mode is fixed at creation; create a new token instead");
    }
    if (body.buckets !== undefined) throw HookwardenError.invalidField(["body", "buckets"], "An agent token's buckets are fixed at creation; create a new token instead");
    if (body.name !== undefined) await ctx.store.db.updateTable("agent_tokens").set({ name: body.name }).where("id", "=", row.id).execute();
    return out({ ...row, ...(body.name !== undefined ? { name: body.name } : {}) });
  });
  route(app, { method: "DELETE", url: "/api/v1/agent-token/:id", operationId: "hookwarden.agent-token.revoke", summary: "Revoke an agent token and disconnect its agents", tag: TAG, responses: { 204: { description: "Revoked" } } }, async (req, reply) => {
    const row = await revokeAgentToken(ctx, req.orgId, req.params.id);
    hub.disconnectToken(row.id);
    return reply.status(204).send();
  });
}
