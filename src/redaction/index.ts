import { SecretValue } from "../vault/secret-value.js";
import { isSensitiveHeader } from "./sensitive-headers.js";

const MASK = SecretValue.MASK;

/**
 * Masks known secret values wherever a rendered request put them: raw, percent-encoded (URL and
 * form), JSON-escaped and base64 (basic auth, `| base64`). Built per attempt from the values that
 * attempt actually revealed, so it never needs a secret it was not given.
 *
 * @example new Redactor(["s3cr3t"]).redact("https://x/?k=s3cr3t") === "https://x/?k=******"
 */
export class Redactor {
  /** Masks nothing; shared, as it never changes (`and` builds a new redactor). */
  static readonly NONE = new Redactor([]);

  /** A redactor of these values, or `NONE` when there is none: most attempts reveal no secret. */
  static of(values: Iterable<string>): Redactor {
    const list = [...values];
    return list.some((v) => v.length > 0) ? new Redactor(list) : Redactor.NONE;
  }

  readonly #needles: string[];

  constructor(values: Iterable<string>) {
    const set = new Set<string>();
    for (const v of values) {
      if (v.length === 0) continue;
      set.add(v);
      // encodeURIComponent throws on a lone surrogate (which JSON can carry); such a value has no
      // percent-encoded form to find, and must not stop the other forms from being masked.
      if (!/\p{Cs}/u.test(v)) set.add(encodeURIComponent(v));
      set.add(new URLSearchParams({ v }).toString().slice(2));
      set.add(JSON.stringify(v).slice(1, -1));
      set.add(Buffer.from(v, "utf8").toString("base64"));
      set.add(Buffer.from(v, "utf8").toString("base64").replace(/=+$/, ""));
      set.add(Buffer.from(v, "utf8").toString("base64url"));
    }
    // Longest first, so a value is masked whole before any shorter value inside it.
    this.#needles = [...set].filter((n) => n.length > 0).sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.#needles.length === 0;
  }

  /** One redactor that masks what either masks (a request's secrets and its connection's). */
  and(other: Redactor): Redactor {
    if (other.empty) return this;
    if (this.empty) return other;
    const both = new Redactor([]);
    both.#needles.push(...new Set([...this.#needles, ...other.#needles]));
    both.#needles.sort((a, b) => b.length - a.length);
    return both;
  }

  redact(text: string): string {
    let out = text;
    for (const n of this.#needles) if (out.includes(n)) out = out.split(n).join(MASK);
    return out;
  }

  /**
   * For text cut at a size limit (a response read up to 64 KiB): masks every secret, then a tail
   * that is the start of one. Whatever followed the cut is gone, so a secret straddling it cannot
   * be told from a coincidence; its first half is masked rather than kept. The tail is found with
   * a KMP pass per needle, linear in the needle's length.
   *
   * @example new Redactor(["s3cr3t"]).redactCut("token: s3c") === "token: ******"
   */
  redactCut(text: string): string {
    const out = this.redact(text);
    let longest = 0;
    for (const n of this.#needles) longest = Math.max(longest, prefixAtEnd(n, out));
    return longest === 0 ? out : out.slice(0, out.length - longest) + MASK;
  }

  /** Credential headers (`SENSITIVE_HEADERS`) are masked whole; other values lose any known secret. */
  redactHeaders(headers: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(headers)) out[k] = isSensitiveHeader(k) ? MASK : this.redact(v);
    return out;
  }
}

/** Length of the longest proper prefix of `needle` that `text` ends with (Knuth-Morris-Pratt). */
function prefixAtEnd(needle: string, text: string): number {
  const m = needle.length;
  if (m < 2) return 0;
  const fail = new Int32Array(m);
  for (let i = 1, k = 0; i < m; i++) {
    while (k > 0 && needle[i] !== needle[k]) k = fail[k - 1]!;
    if (needle[i] === needle[k]) k++;
    fail[i] = k;
  }
  let state = 0;
  // Only the last m - 1 characters can hold a proper prefix.
  for (let i = Math.max(0, text.length - (m - 1)); i < text.length; i++) {
    while (state > 0 && text[i] !== needle[state]) state = fail[state - 1]!;
    if (text[i] === needle[state]) state++;
    if (state === m) state = fail[m - 1]!;
  }
  return state;
}
