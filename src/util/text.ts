/**
 * A destination's answer as text a database column can hold. PostgreSQL `text` refuses U+0000
 * (SQLite would keep it, but the two must store the same thing): each NUL becomes U+FFFD, the
 * replacement character `toString("utf8")` already uses for invalid bytes. Without this one
 * answer containing a NUL byte failed its whole result batch on PostgreSQL, and the jobs in it
 * were delivered again and again.
 */
export function storableText(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text;
}
