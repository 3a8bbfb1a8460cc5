import { randomUUID } from "node:crypto";
import type { Selectable } from "kysely";
import type { Context } from "../context/index.js";
import { checkFunctionName } from "../functions/index.js";
import { HookwardenError } from "../errors/index.js";
import type { InputsTable } from "../store/schema.js";
import type { Patch } from "../util/patch.js";
import type { BucketRow } from "./buckets.js";
import type { VerificationConfig, VerificationType } from "./types.js";

export type InputRow = Selectable<InputsTable>;

export type ResponseConfig =
  | { mode: "static"; status: number; headers: Record<string, string>; body: string }
  | { mode: "wait"; timeoutMs: number }
  /** Issue 14: the bucket's function named here answers the caller (src/functions/input-response.ts). */
  | { mode: "function"; function: string };

/** 200, no headers, empty body: what every input answers unless configured, and what unknown inputs answer. */
export const DEFAULT_RESPONSE: ResponseConfig = Object.freeze({ mode: "static", status: 200, headers: Object.freeze({}) as Record<string, string>, body: "" });

export interface InputInput {
  name: string;
  verification?: (VerificationConfig & { secret?: string | undefined }) | undefined;
  response?: ResponseConfig | undefined;
  dedupe?: boolean | undefined;
}

export function inputAad(inputId: string): string {
  return `input-verification:${inputId}`;
}

function verificationColumns(ctx: Context, inputId: string, v: InputInput["verification"]): Pick<InputRow, "verification" | "verification_secret_enc"> {
  const cfg = v ?? { type: "none" as VerificationType };
  if (cfg.type !== "none" && !cfg.secret) {
    throw HookwardenError.invalidField(["body", "verification", "secret"], `${cfg.type} verification needs the provider's signing secret`);
  }
  if (cfg.type === "hmac-sha256" && !cfg.header) {
    throw HookwardenError.invalidField(["body", "verification", "header"], "hmac-sha256 verification needs the header that carries the signature");
  }
  if (cfg.type === "standard-webhooks" && cfg.secret && !/^(whsec_|whpk_)?[A-Za-z0-9+/]+={0,2}$/.test(cfg.secret)) {
    throw HookwardenError.invalidField(["body", "verification", "secret"], "A Standard Webhooks secret is whsec_<base64> (or the sender's whpk_ public key)", "E_SECRET_FORMAT");
  }
  if (cfg.type === "standard-webhooks" && cfg.secret?.startsWith("whpk_") && Buffer.from(cfg.secret.slice(5), "base64").length !== 32) {
    // Any other length can never verify a signature: refuse it here rather than 401 every request.
    throw HookwardenError.invalidField(["body", "verification", "secret"], "A whpk_ key is the base64 of a 32-byte ed25519 public key", "E_SECRET_FORMAT");
  }
  const stored: VerificationConfig = { type: cfg.type };
  if (cfg.type === "hmac-sha256") Object.assign(stored, { header: cfg.header, encoding: cfg.encoding ?? "hex", prefix: cfg.prefix ?? "" });
  return {
    verification: JSON.stringify(stored),
    verification_secret_enc: cfg.type === "none" || !cfg.secret ? null : ctx.keyring.seal(cfg.secret, inputAad(inputId)),
  };
}

function checkResponse(r: ResponseConfig): void {
  if (r.mode === "function") checkFunctionName(r.function, ["body", "response", "function"]);
  if (r.mode === "static") {
    for (const [k, v] of Object.entries(r.headers)) {
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(k) || /[\r\n\0]/.test(v)) throw HookwardenError.invalidField(["body", "response", "headers", k], "Not a valid header");
    }
  }
}

/** A new input with an unguessable id (UUIDv4, 122 random bits): the id is the capability. */
export async function createInput(ctx: Context, bucket: BucketRow, input: InputInput): Promise<InputRow> {
  const now = ctx.clock.now();
  const id = randomUUID();
  const response = input.response ?? DEFAULT_RESPONSE;
  checkResponse(response);
  const row: InputRow = {
    id,
    bucket_id: bucket.id,
    org_id: bucket.org_id,
    name: input.name,
    ...verificationColumns(ctx, id, input.verification),
    response: JSON.stringify(response),
    dedupe: input.dedupe === false ? 0 : 1,
    created_at: now,
    updated_at: now,
  };
  await ctx.store.db.insertInto("inputs").values(row).execute();
  return row;
}

export async function findInput(ctx: Context, bucket: BucketRow, id: string): Promise<InputRow> {
  const row = await ctx.store.db.selectFrom("inputs").selectAll().where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
  if (!row) throw HookwardenError.notFound("Input");
  return row;
}

export async function listInputs(ctx: Context, bucket: BucketRow): Promise<InputRow[]> {
  return ctx.store.db.selectFrom("inputs").selectAll().where("bucket_id", "=", bucket.id).orderBy("created_at").execute();
}

export async function updateInput(ctx: Context, bucket: BucketRow, id: string, patch: Patch<InputInput>): Promise<InputRow> {
  const current = await findInput(ctx, bucket, id);
  const set: Partial<InputRow> = { updated_at: ctx.clock.now() };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.dedupe !== undefined) set.dedupe = patch.dedupe ? 1 : 0;
  if (patch.response !== undefined) {
    checkResponse(patch.response);
    set.response = JSON.stringify(patch.response);
  }
  if (patch.verification !== undefined) Object.assign(set, verificationColumns(ctx, id, patch.verification));
  await ctx.store.db.updateTable("inputs").set(set).where("id", "=", current.id).execute();
  return { ...current, ...set };
}

export async function deleteInput(ctx: Context, bucket: BucketRow, id: string): Promise<void> {
  const res = await ctx.store.db.deleteFrom("inputs").where("bucket_id", "=", bucket.id).where("id", "=", id).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw HookwardenError.notFound("Input");
}
