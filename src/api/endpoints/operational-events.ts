import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import type { Context } from "../../context/index.js";
import { findEndpoint } from "../../endpoints/index.js";
import { listEndpointEvents, type EndpointEventRow } from "../../operational/endpoint-log.js";
import { listOf, named, route, dateTime } from "../contract/index.js";
import { listResponse, pageFrom, pageQuery } from "../pagination.js";
import { iso } from "../schemas.js";

/** One operational event as its webhook carries it (Svix's `{type, timestamp, data}`), plus its id. */
export const EndpointOperationalEvent = named(
  "EndpointOperationalEvent",
  z.object({ id: z.string(), type: z.string(), timestamp: dateTime, data: z.record(z.string(), z.unknown()) }),
);

const eventOut = (r: EndpointEventRow) => ({ id: r.id, type: r.type, timestamp: iso(r.created_at), data: JSON.parse(r.data) as Record<string, unknown> });

/**
 * `GET …/endpoint/{id}/operational-event`: the operational events that named this endpoint
 * (disabled, failing, exhausted, recovered, secret rotated, …), newest first, the newest
 * hundred kept. Organisation tokens only: app-portal tokens are refused (not in PORTAL_ROUTES).
 */
export function endpointOperationalEventRoutes(app: FastifyInstance, ctx: Context): void {
  route(
    app,
    {
      method: "GET",
      url: "/api/v1/app/:app_id/endpoint/:endpoint_id/operational-event",
      operationId: "v1.endpoint.list-operational-events",
      summary: "The operational events that concerned this endpoint, newest first",
      tag: "Endpoint",
      query: pageQuery,
      responses: { 200: { description: "A page of events", schema: listOf(EndpointOperationalEvent) } },
    },
    async (req, _reply, { query: q }) => {
      const page = pageFrom(q, "descending");
      const application = await findApplication(ctx, req.orgId, req.params.app_id);
      const ep = await findEndpoint(ctx, application, req.params.endpoint_id);
      return listResponse((await listEndpointEvents(ctx, ep.id, page)).map(eventOut), page);
    },
  );
}
