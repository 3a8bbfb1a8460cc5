import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { parse } from "../validate.js";

/** The methods a route may answer; `/in/…` answers any of them. */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One documented answer: a JSON body (`schema`), another media type (`contentType`), or none (204). */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  contentType?: string;
}

/** Who may call a route: an API token (the default), anyone, or the bucket's own credentials (`/in`). */
export type RouteAuth = "bearer" | "none" | "bucket";

/**
 * A route declared once: the Fastify route is registered from it, its body and query are parsed
 * with these very schemas, and the OpenAPI document is generated from it (`document.ts`).
 */
export interface RouteSpec<Q extends z.ZodType | undefined = z.ZodType | undefined, B extends z.ZodType | undefined = z.ZodType | undefined> {
  /** `"ANY"`: every method Fastify knows (the public `/in/…` URLs, where providers choose). */
  method: HttpMethod | readonly HttpMethod[] | "ANY";
  /** Fastify syntax (`/api/v1/app/:app_id`); becomes `/api/v1/app/{app_id}` in the document. */
  url: string;
  /** Svix's operation id where the route is Svix's (`v1.application.create`), ours otherwise. */
  operationId: string;
  summary: string;
  tag: string;
  description?: string;
  auth?: RouteAuth;
  query?: Q;
  body?: B;
  /**
   * The body may be absent (read as `{}`): rotate, test, app-portal-access. `true` also reads a
   * JSON `null` as `{}`; `"absent"` reads only a missing body so (a `null` is refused, 422).
   */
  bodyOptional?: boolean | "absent";
  responses: Record<number, ResponseSpec>;
}

/** `{app_id: string}` from `/api/v1/app/:app_id`; `{"*": string}` for a trailing wildcard. */
export type ParamsOf<U extends string> = U extends `${string}:${infer P}/${infer Rest}`
  ? { [K in P]: string } & ParamsOf<`/${Rest}`>
  : U extends `${string}:${infer P}`
    ? { [K in P]: string }
    : U extends `${string}/*`
      ? { "*": string }
      : unknown;

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

/**
 * The parsed body and query, each parsed on first read (so a handler that checks permissions
 * first still answers 403 before 422, as before), with the route's declared schemas only.
 */
export interface RouteInput<Q, B> {
  readonly body: Out<B>;
  readonly query: Out<Q>;
}

export type RouteHandler<U extends string, Q, B> = (
  req: FastifyRequest<{ Params: ParamsOf<U> }>,
  reply: FastifyReply,
  input: RouteInput<Q, B>,
) => Promise<unknown>;

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route's declaration, read by the contract's `onRoute` hook. */
    contract?: RouteSpec;
  }
}

/**
 * A class rather than an object literal with getters: a literal's accessors are made anew for every
 * request (0.5-0.8% of the gateway's main thread in the ingest and e2e benches), a class's live
 * once on its prototype.
 */
class LazyInput<Q, B> implements RouteInput<Q, B> {
  #body: { v: unknown } | undefined;
  #query: { v: unknown } | undefined;
  readonly #spec: RouteSpec;
  readonly #req: FastifyRequest;

  constructor(spec: RouteSpec, req: FastifyRequest) {
    this.#spec = spec;
    this.#req = req;
  }

  get body(): Out<B> {
    const spec = this.#spec;
    const req = this.#req;
    if (!spec.body) return undefined as Out<B>;
    const raw = spec.bodyOptional === "absent" ? (req.body === undefined ? {} : req.body) : spec.bodyOptional ? (req.body ?? {}) : req.body;
    this.#body ??= { v: parse(spec.body, raw, "body") };
    return this.#body.v as Out<B>;
  }

  get query(): Out<Q> {
    if (!this.#spec.query) return undefined as Out<Q>;
    this.#query ??= { v: parse(this.#spec.query, this.#req.query, "query") };
    return this.#query.v as Out<Q>;
  }
}

/**
 * Registers one route and declares it in the API contract.
 *
 * @example
 * route(app, { method: "GET", url: "/api/v1/app/:app_id", operationId: "v1.application.get",
 *   summary: "Get an application", tag: "Application", responses: { 200: { description: "The application", schema: Application } } },
 *   async (req) => applicationOut(await findApplication(ctx, req.orgId, req.params.app_id)));
 */
export function route<const U extends string, Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  app: FastifyInstance,
  spec: RouteSpec<Q, B> & { url: U },
  handler: RouteHandler<U, Q, B>,
): void {
  const declared = spec as RouteSpec;
  const run = (req: FastifyRequest, reply: FastifyReply) => handler(req as FastifyRequest<{ Params: ParamsOf<U> }>, reply, new LazyInput<Q, B>(declared, req));
  if (spec.method === "ANY") app.all(spec.url, { config: { contract: declared } }, run);
  else app.route({ method: typeof spec.method === "string" ? spec.method : [...spec.method], url: spec.url, config: { contract: declared }, handler: run });
}
