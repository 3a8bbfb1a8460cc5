/**
 * Header names whose values are credentials: never shown back (GET .../headers lists them under
 * `sensitive`, as Svix does), masked whole in previews and attempt records. Names compare
 * case-insensitively (RFC 9110 §5.1). One list, so the three places cannot drift apart.
 */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "www-authenticate",
  "proxy-authenticate",
  "cookie",
  "set-cookie",
  "x-api-key",
  "api-key",
  "apikey",
  "x-apikey",
  "x-auth-token",
  "x-access-token",
  "x-refresh-token",
  "x-csrf-token",
  "x-xsrf-token",
  "x-amz-security-token",
]);

/** Whether `name` (any case) carries a credential. */
export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE_HEADERS.has(name.toLowerCase());
}
