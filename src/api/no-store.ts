import type { FastifyReply } from "fastify";

/**
 * Marks an answer that carries a secret (shown once) as never to be kept by a cache, a proxy or
 * the browser's history: `Cache-Control: no-store` (RFC 9111 §5.2.2.5), and `Pragma: no-cache`
 * for HTTP/1.0 caches (RFC 9111 §5.4). Without it a shared cache between the caller and us could
 * hand the secret to the next client asking for the same URL.
 */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header("cache-control", "no-store").header("pragma", "no-cache");
}
