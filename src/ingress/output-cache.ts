import type { Context } from "../context/index.js";
import { readManyThrough } from "../store/table-writes.js";
import { lookupCache, type TtlCache } from "../util/ttl-cache.js";
import { SecretValue } from "../vault/secret-value.js";
import type { BucketRow } from "./buckets.js";
import { outputAad, type OutputRow } from "./outputs.js";

/** The tables a bucket's outputs are read from. */
const SOURCES = ["buckets", "outputs"];

/** A bucket output ready to send to: its row, its bucket, its signing secret opened. */
export interface ForwardTarget {
  output: OutputRow;
  bucket: Pick<BucketRow, "id" | "name" | "auth_type" | "ephemeral">;
  signingSecret: SecretValue | undefined;
}

/** A bucket's outputs (enabled and disabled, by id) with what forwarding needs of each. */
export interface BucketOutputs {
  bucket: Pick<BucketRow, "id" | "name" | "auth_type" | "ephemeral">;
  outputs: OutputRow[];
  targets: Map<string, ForwardTarget>;
}

/**
 * Outputs per bucket for the ingress hot path, cached for two seconds like the input lookups
 * (`InputCache`): the intake reads them for every batch and the worker for every batch of
 * forwards, which was four queries per one or two requests in the ingest bench. Changes made
 * through this node invalidate at once, other processes' on their next read (SQLite) or NOTIFY
 * (PostgreSQL), within the TTL at worst. Signing secrets
 * are opened once per load and stay `SecretValue`s.
 */
export class OutputCache {
  readonly #ctx: Context;
  readonly #entries: TtlCache<BucketOutputs | undefined>;

  constructor(ctx: Context) {
    this.#ctx = ctx;
    this.#entries = lookupCache(ctx.clock);
    // A write to these tables through any process (`Store.writes`) empties it: the outputs' health
    // columns included, so the recorder can trust a cached streak of 0 (engine/recorder.ts).
    ctx.store.writes.watch(SOURCES, () => this.#entries.delete());
  }

  /** The buckets' outputs; a bucket that no longer exists is missing from the map. */
  of(bucketIds: readonly string[]): Promise<Map<string, BucketOutputs>> {
    return readManyThrough(this.#ctx.store.writes, SOURCES, this.#entries, bucketIds, (missing) => loadBucketOutputs(this.#ctx, missing));
  }

  /** Forgets one bucket (its outputs or forwarding settings changed), or every bucket. */
  invalidate(bucketId?: string): void {
    this.#entries.delete(bucketId);
  }
}

/** A bucket output ready to send to, its signing secret opened (a caller already holding both rows). */
export function outputTarget(ctx: Pick<Context, "keyring">, bucket: ForwardTarget["bucket"], output: OutputRow): ForwardTarget {
  const signingSecret = output.signing_secret_enc === null ? undefined : new SecretValue(ctx.keyring.openString(output.signing_secret_enc, outputAad(output.id)));
  return { output, bucket, signingSecret };
}

/** Two queries for any number of buckets: their forwarding fields and every output. */
export async function loadBucketOutputs(ctx: Context, bucketIds: readonly string[]): Promise<Map<string, BucketOutputs>> {
  const { store, keyring } = ctx;
  const [buckets, outputs] = await Promise.all([
    store.db.selectFrom("buckets").select(["id", "name", "auth_type", "ephemeral"]).where("id", "in", [...bucketIds]).execute(),
    store.db.selectFrom("outputs").selectAll().where("bucket_id", "in", [...bucketIds]).orderBy("id").execute(),
  ]);
  const result = new Map<string, BucketOutputs>();
  for (const bucket of buckets) result.set(bucket.id, { bucket, outputs: [], targets: new Map() });
  for (const output of outputs) {
    const entry = result.get(output.bucket_id);
    if (!entry) continue;
    entry.outputs.push(output);
    entry.targets.set(output.id, outputTarget({ keyring }, entry.bucket, output));
  }
  return result;
}
