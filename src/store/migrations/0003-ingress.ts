import type { Kysely } from "kysely";

/** Issue 4: buckets, inputs and outputs; received requests (sealed), dedupe keys, rejections; job kinds. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("buckets")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull().references("orgs.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("auth_type", "text", (c) => c.notNull())
    .addColumn("auth_username", "text")
    .addColumn("auth_secret_enc", "text")
    .addColumn("ephemeral", "integer", (c) => c.notNull())
    .addColumn("ip_allowlist", "text")
    .addColumn("rate_limit", "integer")
    .addColumn("retention_days", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addUniqueConstraint("buckets_org_name", ["org_id", "name"])
    .execute();

  await db.schema
    .createTable("inputs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("bucket_id", "text", (c) => c.notNull().references("buckets.id").onDelete("cascade"))
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("verification", "text", (c) => c.notNull())
    .addColumn("verification_secret_enc", "text")
    .addColumn("response", "text", (c) => c.notNull())
    .addColumn("dedupe", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("inputs_bucket").on("inputs").columns(["bucket_id", "id"]).execute();

  await db.schema
    .createTable("outputs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("bucket_id", "text", (c) => c.notNull().references("buckets.id").onDelete("cascade"))
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("url", "text")
    .addColumn("resign", "integer", (c) => c.notNull())
    .addColumn("signing_secret_enc", "text")
    .addColumn("tls_verify", "integer", (c) => c.notNull())
    .addColumn("broadcast", "integer", (c) => c.notNull())
    .addColumn("disabled", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("outputs_bucket").on("outputs").columns(["bucket_id", "id"]).execute();

  await db.schema
    .createTable("inbound_requests")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text", (c) => c.notNull())
    .addColumn("bucket_id", "text", (c) => c.notNull().references("buckets.id").onDelete("cascade"))
    .addColumn("input_id", "text", (c) => c.notNull())
    .addColumn("status_code", "integer", (c) => c.notNull())
    .addColumn("size", "integer", (c) => c.notNull())
    .addColumn("data_enc", "text")
    .addColumn("received_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("inbound_requests_bucket").on("inbound_requests").columns(["bucket_id", "id"]).execute();
  await db.schema.createIndex("inbound_requests_received").on("inbound_requests").column("received_at").execute();

  await db.schema
    .createTable("inbound_dedupe")
    .addColumn("input_id", "text", (c) => c.notNull())
    .addColumn("delivery_id", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("inbound_dedupe_pk", ["input_id", "delivery_id"])
    .execute();
  await db.schema.createIndex("inbound_dedupe_expires").on("inbound_dedupe").column("expires_at").execute();

  await db.schema
    .createTable("inbound_rejections")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("org_id", "text")
    .addColumn("bucket_id", "text")
    .addColumn("input_id", "text", (c) => c.notNull())
    .addColumn("status_code", "integer", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("inbound_rejections_bucket").on("inbound_rejections").columns(["bucket_id", "id"]).execute();

  await db.schema.alterTable("jobs").addColumn("kind", "text", (c) => c.notNull().defaultTo("outbound")).execute();
}
