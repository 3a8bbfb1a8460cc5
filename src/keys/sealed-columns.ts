import { headersAad } from "../endpoints/index.js";
import { secretAad } from "../endpoints/secrets.js";
import { bucketAuthAad } from "../ingress/buckets.js";
import { inputAad } from "../ingress/inputs.js";
import { outputAad } from "../ingress/outputs.js";
import { requestAad } from "../ingress/stored-request.js";
import { vaultAad } from "../applications/vault.js";

/**
 * Every column that holds a value sealed under the master key, with how to rebuild its
 * associated data. Master-key rotation walks exactly this list; a new sealed column must be
 * added here (the rotation test fails otherwise: it checks every `*_enc` column is listed).
 */
export interface SealedColumn {
  table: "endpoint_secrets" | "endpoints" | "vault_secrets" | "buckets" | "inputs" | "outputs" | "inbound_requests";
  /** Columns that identify a row, in keyset-pagination order. */
  key: readonly string[];
  column: string;
  aad: (row: Record<string, string>) => string;
}

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "endpoint_secrets", key: ["id"], column: "secret_enc", aad: (r) => secretAad(r.endpoint_id!, r.id!) },
  { table: "endpoints", key: ["id"], column: "headers_enc", aad: (r) => headersAad(r.id!) },
  { table: "vault_secrets", key: ["app_id", "name"], column: "value_enc", aad: (r) => vaultAad(r.app_id!, r.name!) },
  { table: "buckets", key: ["id"], column: "auth_secret_enc", aad: (r) => bucketAuthAad(r.id!) },
  { table: "inputs", key: ["id"], column: "verification_secret_enc", aad: (r) => inputAad(r.id!) },
  { table: "outputs", key: ["id"], column: "signing_secret_enc", aad: (r) => outputAad(r.id!) },
  // Received requests are the bulk of what is sealed; rotation walks them in keyset pages too.
  { table: "inbound_requests", key: ["id"], column: "data_enc", aad: (r) => requestAad(r.id!) },
];

/** Columns the AAD needs besides the key. */
export const EXTRA_COLUMNS: Partial<Record<SealedColumn["table"], string[]>> = { endpoint_secrets: ["endpoint_id"] };
