import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { findApplication } from "../../applications/index.js";
import { findTokenByHash, hashToken } from "../../auth/tokens.js";
import type { Context } from "../../context/index.js";
import { HookwardenError } from "../../errors/index.js";
import { installJsonBody } from "../json-body.js";
import { parse } from "../validate.js";
import { ConsoleSessions, CSRF_HEADER, SESSION_COOKIE, sessionCookie } from "./sessions.js";
import { loadStaticFiles } from "./static-files.js";

/** Where `npm run build` puts the browser bundle: `dist/web`, three levels above this file in src/ and dist/ alike. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL("../../../dist/web", import.meta.url));

const signIn = z
  .object({
    token: z.string().min(1).max(512),
    /** Portal sign-in: the one application the session may see (id or uid). */
    app: z.string().min(1).max(256).optional(),
  })
  .strict();

/**
 * The page's Content-Security-Policy: only this origin's own files, no inline script or style, no
 * plugins, no `<base>` games; `frame-ancestors` is `'none'` for the console and the configured
 * origins for the embeddable portal.
 */
export function contentSecurityPolicy(frameAncestors: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors.length ? frameAncestors.join(" ") : "'none'"}`,
  ].join("; ");
}

/**
 * `/console` (operators) and `/portal` (their customers): the static single-page app with strict
 * security headers, and `/console/api/session`, which trades an API token for a short-lived
 * HttpOnly session cookie so the token itself never sits in browser storage.
 */
export async function consoleRoutes(app: FastifyInstance, ctx: Context, opts: { sessions: ConsoleSessions; secure: boolean; webRoot?: string }): Promise<void> {
  const { sessions, secure } = opts;
  const root = opts.webRoot ?? DEFAULT_WEB_ROOT;
  let loaded = loadStaticFiles(root);
  // Read once; a gateway started before the bundle was built reads it when it is first asked for.
  const bundle = () => (loaded?.has("/index.html") ? loaded : (loaded = loadStaticFiles(root)));
  const consoleCsp = contentSecurityPolicy([]);
  const portalCsp = contentSecurityPolicy(ctx.config.portalFrameAncestors);

  const common = (reply: FastifyReply) =>
    reply
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .header("cross-origin-opener-policy", "same-origin")
      .header("cross-origin-resource-policy", "same-origin");

  const page = (reply: FastifyReply, portal: boolean) => {
    const files = bundle();
    if (!files?.has("/index.html")) throw new HookwardenError("E_NOT_FOUND", 404, "The console is not built: run npm run build");
    common(reply)
      .header("content-security-policy", portal ? portalCsp : consoleCsp)
      .header("cache-control", "no-store");
    if (!portal) reply.header("x-frame-options", "DENY");
    return reply.type("text/html; charset=utf-8").send(files.get("/index.html")!.body);
  };

  app.get<{ Params: { "*": string } }>("/console/assets/*", async (req, reply) => {
    const file = bundle()?.get("/assets/" + req.params["*"]);
    if (!file) throw new HookwardenError("E_NOT_FOUND", 404, "No such console file");
    // Vite names assets by content hash, so a year of caching is safe.
    return common(reply).header("content-security-policy", consoleCsp).header("cache-control", "public, max-age=31536000, immutable").type(file.type).send(file.body);
  });
  // Single-page app: every other path under /console or /portal is the same document.
  app.get("/console", async (_req, reply) => page(reply, false));
  app.get("/console/*", async (_req, reply) => page(reply, false));
  // Portal branding from configuration, as a stylesheet and a file of this origin: the strict
  // CSP (no inline style, images from 'self' only) holds for a branded portal too.
  const brand = loadBrand(ctx.config);
  app.get("/portal/brand.json", async (_req, reply) => common(reply).header("cache-control", "no-cache").send({ name: brand.name, logo: brand.logo !== undefined }));
  app.get("/portal/brand.css", async (_req, reply) =>
    common(reply)
      .header("cache-control", "no-cache")
      .type("text/css; charset=utf-8")
      .send(brand.color ? `header.top { background: ${brand.color}; }\n` : ""),
  );
  app.get("/portal/brand/logo", async (_req, reply) => {
    if (!brand.logo) throw new HookwardenError("E_NOT_FOUND", 404, "No logo configured");
    // An SVG opened on its own runs nothing either.
    return common(reply).header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'").header("cache-control", "no-cache").type(brand.logo.type).send(brand.logo.body);
  });
  app.get("/portal", async (_req, reply) => page(reply, true));
  app.get("/portal/*", async (_req, reply) => page(reply, true));

  await app.register(async (api) => {
    installJsonBody(api);
    api.addHook("onRequest", async (req, reply) => {
      common(reply).header("cache-control", "no-store");
      if (req.headers[CSRF_HEADER] !== "1") throw new HookwardenError("E_FORBIDDEN", 403, `Console calls must carry the header ${CSRF_HEADER}: 1`);
    });
    api.post("/console/api/session", async (req, reply) => {
      const body = parse(signIn, req.body ?? {}, "body");
      const token = await findTokenByHash(ctx.store.db, hashToken(body.token));
      if (token === undefined || (token.expiresAt !== null && token.expiresAt <= ctx.clock.now())) throw new HookwardenError("E_UNAUTHORIZED", 401, "Invalid token");
      // A token limited to one application (an app-portal token, or a scoped API token) opens a
      // session on that application only, whatever the sign-in names.
      const named = token.appId ?? body.app;
      const app = named === undefined ? undefined : await findApplication(ctx, token.orgId, named);
      if (app && body.app !== undefined && token.appId !== null && body.app !== app.id && body.app !== app.uid) throw HookwardenError.notFound("Application");
      const old = sessionCookie(req);
      if (old !== undefined) sessions.delete(old);
      const s = sessions.create(token, app && { id: app.id, uid: app.uid });
      reply.header("set-cookie", cookie(s.id, Math.floor(sessions.ttlMs / 1000), secure));
      return reply.status(201).send({ expiresAt: new Date(s.expiresAt).toISOString() });
    });
    api.get("/console/api/session", async (req) => {
      const id = sessionCookie(req);
      const s = id === undefined ? undefined : sessions.find(id);
      if (!s) throw new HookwardenError("E_UNAUTHORIZED", 401, "Not signed in");
      return { expiresAt: new Date(s.expiresAt).toISOString(), app: s.app?.id ?? null };
    });
    api.delete("/console/api/session", async (req, reply) => {
      const id = sessionCookie(req);
      if (id !== undefined) sessions.delete(id);
      reply.header("set-cookie", cookie("", 0, secure));
      return reply.status(204).send();
    });
  });
}

const LOGO_TYPES: Record<string, string> = { ".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg" };
const LOGO_MAX = 256 * 1024;

/** Reads the configured logo once at start; a missing, oversized or unknown file stops the start with its reason. */
function loadBrand(config: Context["config"]): { name: string; color: string | undefined; logo: { body: Buffer; type: string } | undefined } {
  let logo: { body: Buffer; type: string } | undefined;
  if (config.portalLogo !== undefined) {
    const type = LOGO_TYPES[extname(config.portalLogo).toLowerCase()];
    if (!type) throw new HookwardenError("E_CONFIG", 400, `portalLogo must be a .png, .svg or .jpg file: ${config.portalLogo}`);
    if (statSync(config.portalLogo).size > LOGO_MAX) throw new HookwardenError("E_CONFIG", 400, `portalLogo is larger than 256 KB: ${config.portalLogo}`);
    logo = { body: readFileSync(config.portalLogo), type };
  }
  return { name: config.portalBrandName ?? "Webhooks", color: config.portalBrandColor, logo };
}

function cookie(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}
