import type { Context } from "../context/index.js";
import type { Cidr } from "../net/ssrf.js";
import type { SecretValue } from "../vault/secret-value.js";
import { SecretValue as Secret } from "../vault/secret-value.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";
import { bucketAuthAad, type BucketRow } from "./buckets.js";
import { parseCidrs } from "./client-ip.js";
import { inputAad, type InputRow, type ResponseConfig } from "./inputs.js";
import type { VerificationConfig } from "./types.js";

/** An input with everything the public handler needs, decrypted once per cache period. */
export interface ResolvedInput {
  input: InputRow;
  bucket: BucketRow;
  verification: VerificationConfig;
  response: ResponseConfig;
  verificationSecret: SecretValue | undefined;
  authSecret: SecretValue | undefined;
  allowlist: Cidr[] | undefined;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Input lookups for the public ingress, cached for two seconds (so a changed secret or allowlist
 * applies on every node within that time). Ids that are not UUIDv4 never reach the database, and
 * misses are cached too, so a scan of random ids costs one query per id at most.
 */
export class InputCache {
  readonly #ctx: Context;
  readonly #entries: TtlCache<ResolvedInput | undefined>;

  constructor(ctx: Context) {
    this.#ctx = ctx;
    this.#entries = lookupCache(ctx.clock);
  }

  async get(id: string): Promise<ResolvedInput | undefined> {
    if (!UUID_RE.test(id)) return undefined;
    const hit = this.#entries.get(id);
    if (hit) return hit.value;
    const value = await this.#load(id);
    this.#entries.set(id, value);
    return value;
  }

  invalidate(id?: string): void {
    this.#entries.delete(id);
  }

  async #load(id: string): Promise<ResolvedInput | undefined> {
    const { store, keyring } = this.#ctx;
    const input = await store.db.selectFrom("inputs").selectAll().where("id", "=", id).executeTakeFirst();
    if (!input) return undefined;
    const bucket = await store.db.selectFrom("buckets").selectAll().where("id", "=", input.bucket_id).executeTakeFirst();
    if (!bucket) return undefined;
    return {
      input,
      bucket,
      verification: JSON.parse(input.verification) as VerificationConfig,
      response: JSON.parse(input.response) as ResponseConfig,
      verificationSecret: input.verification_secret_enc === null ? undefined : new Secret(keyring.openString(input.verification_secret_enc, inputAad(input.id))),
      authSecret: bucket.auth_secret_enc === null ? undefined : new Secret(keyring.openString(bucket.auth_secret_enc, bucketAuthAad(bucket.id))),
      allowlist: bucket.ip_allowlist === null ? undefined : parseCidrs(JSON.parse(bucket.ip_allowlist) as string[]),
    };
  }
}
