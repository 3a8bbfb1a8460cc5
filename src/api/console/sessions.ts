import type { TokenInfo } from "../../auth/tokens.js";
import { createHash, randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Clock } from "../../clock/index.js";
import { HookwardenError } from "../../errors/index.js";

/** The cookie that carries a console session id (never the API token). */
export const SESSION_COOKIE = "hw_session";
/**
 * Every cookie-authenticated call must carry this header. A cross-site form or image cannot set a
 * custom header, and a cross-site `fetch` that does needs a CORS preflight this server never
 * grants, so the header proves the call came from the console's own origin (OWASP CSRF cheat
 * sheet, "custom request headers"); `SameSite=Strict` is the second line.
 */
export const CSRF_HEADER = "x-hookwarden-console";

const MAX_SESSIONS = 10_000;

interface Session {
  orgId: string;
  /** The API token the session was opened with: the session reaches what it reaches, no more. */
  token: TokenInfo;
  expiresAt: number;
  /** A portal session sees one application only: its id and uid (either may name it in a URL). */
  app?: { id: string; uid: string | null } | undefined;
}

/**
 * Console sessions, in memory: an id of 32 random bytes in an HttpOnly cookie, kept here only as
 * its SHA-256 (a heap dump does not hand out live sessions). A restart signs everyone out, and
 * each node of a PostgreSQL cluster has its own sessions (a load balancer needs sticky sessions).
 */
export class ConsoleSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #clock: Clock;
  readonly #ttl: number;

  constructor(clock: Clock, ttlMs: number) {
    this.#clock = clock;
    this.#ttl = ttlMs;
  }

  get ttlMs(): number {
    return this.#ttl;
  }

  /**
   * A new session for `token`: the cookie value to send, and when it ends (never after the token
   * itself expires).
   */
  create(token: TokenInfo, app?: Session["app"]): { id: string; expiresAt: number } {
    const now = this.#clock.now();
    if (this.#sessions.size >= MAX_SESSIONS) this.#sweep(now);
    // Still full of live sessions: the oldest goes (Map keeps insertion order).
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value as string);
    const id = randomBytes(32).toString("base64url");
    const expiresAt = Math.min(now + this.#ttl, token.expiresAt ?? Number.POSITIVE_INFINITY);
    this.#sessions.set(hash(id), { orgId: token.orgId, token, expiresAt, app });
    return { id, expiresAt };
  }

  /** The live session behind a cookie value, or undefined. */
  find(id: string): Session | undefined {
    const key = hash(id);
    const s = this.#sessions.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.#clock.now()) {
      this.#sessions.delete(key);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.#sessions.delete(hash(id));
  }

  #sweep(now: number): void {
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k);
  }
}

function hash(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

/** The `hw_session` cookie's value in a request, if any (RFC 6265 §5.4 `cookie-string`). */
export function sessionCookie(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{43}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/**
 * The token behind a request authenticated by a console session cookie, or undefined when it
 * carries none (the caller then asks for a bearer token). A valid cookie without the CSRF header
 * is refused rather than ignored, so the console shows why.
 */
export function sessionToken(sessions: ConsoleSessions, req: FastifyRequest): TokenInfo | undefined {
  const id = sessionCookie(req);
  if (id === undefined) return undefined;
  const s = sessions.find(id);
  if (!s) return undefined;
  if (req.headers[CSRF_HEADER] !== "1" && !isEventStream(req)) throw new HookwardenError("E_FORBIDDEN", 403, `A console session call must carry the header ${CSRF_HEADER}: 1`);
  if (s.app && !withinApp(req.url, s.app) && !readsCatalogue(req)) throw HookwardenError.notFound("Application");
  return s.token;
}

/**
 * The live tail (`GET …/bucket/{id}/request/stream`) is opened by the browser's EventSource, which
 * cannot add a header. It may go without the CSRF header: a GET that changes nothing, whose
 * answer another origin cannot read (no CORS is granted), with the cookie `SameSite=Strict`.
 */
function isEventStream(req: FastifyRequest): boolean {
  return req.method === "GET" && /^\/api\/v1\/bucket\/[^/?]+\/request\/stream(?:\?|$)/.test(req.url);
}

/**
 * The organisation's event catalogue, read: an application's session may show it (Svix's portal
 * does); what the token may see of it is its own guard's to say (a portal token: no archived or
 * feature-flagged types).
 */
function readsCatalogue(req: FastifyRequest): boolean {
  return (req.method === "GET" || req.method === "HEAD") && /^\/api\/v1\/event-type(?:\/[A-Za-z0-9._-]+)?(?:\?|$)/.test(req.url);
}

/**
 * Whether a URL stays inside one application's API (`/api/v1/app/{id or uid}` and below). Anything
 * else, the application list and other applications included, answers as if it did not exist.
 * The path segment is compared before any decoding, so `%2F` or `..` cannot step out of it.
 */
function withinApp(url: string, app: { id: string; uid: string | null }): boolean {
  const path = url.split("?", 1)[0]!;
  const m = /^\/api\/v1\/app\/([^/]+)(?:\/|$)/.exec(path);
  if (!m || path.includes("/../") || path.endsWith("/..") || /%2e|%2f|%5c/i.test(path)) return false;
  return m[1] === app.id || (app.uid !== null && m[1] === encodeURIComponent(app.uid));
}
