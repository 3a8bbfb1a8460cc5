import { readFileSync } from "node:fs";
import type { FastifyInstance, RouteOptions } from "fastify";
import { z } from "zod";
import { buildDocument, type ObservedRoute } from "./document.js";
import { route } from "./route.js";

export { route, type RouteSpec } from "./route.js";
export { named, listOf, dateTime, ErrorBody, Empty } from "./schemas.js";

/** Routes that are not part of the API contract: the console's web pages and its cookie session. */
const OUTSIDE_CONTRACT = /^\/(console|portal)(\/|$)/;

/**
 * Every route Fastify registers (its `onRoute` hook, installed before any route), with its
 * declaration; the OpenAPI document is built from them on first request.
 */
export class ApiContract {
  readonly #routes: ObservedRoute[] = [];
  readonly #version: string;
  #document: string | undefined;

  constructor(version: string) {
    this.#version = version;
  }

  observe(options: RouteOptions): void {
    const methods = (Array.isArray(options.method) ? options.method : [options.method]).map(String);
    // Fastify adds a HEAD route beside each GET (`exposeHeadRoutes`): the GET documents both.
    if (methods.length === 1 && methods[0] === "HEAD" && options.config?.contract === undefined) return;
    this.#routes.push({ methods, url: options.url, spec: options.config?.contract });
  }

  /** Every registered route, documented or not (what the tests compare the document against). */
  routes(): readonly ObservedRoute[] {
    return this.#routes;
  }

  /** Registered routes missing from the document (outside the console): none, or a test fails. */
  undocumented(): ObservedRoute[] {
    return this.#routes.filter((r) => r.spec === undefined && !OUTSIDE_CONTRACT.test(r.url));
  }

  /** The document as JSON text, built once: the route table no longer changes once listening. */
  json(): string {
    this.#document ??= JSON.stringify(buildDocument(this.#routes, this.#version));
    return this.#document;
  }
}

declare module "fastify" {
  interface FastifyInstance {
    /** The declared routes and the OpenAPI document built from them. */
    apiContract: ApiContract;
  }
}

/** The package's version (src/api/contract and dist/api/contract are both three levels down). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** Installs the route observer; call before registering any route. */
export function installContract(app: FastifyInstance, version = packageVersion()): ApiContract {
  const contract = new ApiContract(version);
  app.decorate("apiContract", contract);
  app.addHook("onRoute", (options) => contract.observe(options));
  return contract;
}

const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

/**
 * `GET /api/v1/openapi.json`, public like Svix's own: the document describes routes and
 * shapes only, never an instance's data, URL or secrets.
 */
export function contractRoutes(app: FastifyInstance, contract: ApiContract): void {
  route(
    app,
    {
      method: "GET",
      url: "/api/v1/openapi.json",
      operationId: "hookwarden.openapi.get",
      summary: "This OpenAPI 3.1 document",
      tag: "Health",
      auth: "none",
      responses: { 200: { description: "The document", schema: OpenApiDocument } },
    },
    async (_req, reply) => reply.type("application/json; charset=utf-8").header("cache-control", "public, max-age=300").send(contract.json()),
  );
}
