import type { ColumnType, Generated } from "kysely";

/**
 * Table shapes as Kysely sees them. Every timestamp is epoch milliseconds (BIGINT), booleans are
 * 0/1 integers and JSON is TEXT, so one set of queries serves SQLite and PostgreSQL alike.
 */
export interface OrgsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  org_id: string;
  token_hash: string;
  name: string;
  created_at: number;
  /** Set for an app-portal token: it reaches only this application's routes. */
  app_id: string | null;
  expires_at: number | null;
  /** 1: a read-only app-portal token (GET only). */
  read_only: Generated<number>;
  /** `full` or `read-only` (GET and HEAD only). */
  scope: Generated<string>;
  last_used_at: number | null;
  /** `portal` (an app-portal token) or `api`. */
  kind: Generated<string>;
}

export interface AuditLogTable {
  seq: number;
  id: string;
  at: number;
  org_id: string;
  token_id: string | null;
  token_name: string | null;
  action: string;
  resource_id: string | null;
  status: number;
  client_ip: string | null;
  prev_hash: string;
  hash: string;
}

export interface ApplicationsTable {
  id: string;
  org_id: string;
  uid: string | null;
  name: string;
  rate_limit: number | null;
  metadata: string;
  /** 1: the organisation's hidden operational-webhooks application (migration 0009). */
  internal: ColumnType<number, number | undefined, number>;
  created_at: number;
  updated_at: number;
  /** Issue 11: this application's retention in days (API `payloadRetentionPeriod`); null: `--retention`. */
  payload_retention_days: number | null;
}

export interface EventTypesTable {
  org_id: string;
  name: string;
  description: string;
  archived: number;
  deprecated: number;
  schemas: string | null;
  feature_flag: string | null;
  group_name: string | null;
  created_at: number;
  updated_at: number;
}

export interface EndpointsTable {
  id: string;
  org_id: string;
  app_id: string;
  uid: string | null;
  url: string;
  description: string;
  version: number;
  filter_types: string | null;
  channels: string | null;
  rate_limit: number | null;
  disabled: number;
  disabled_reason: string | null;
  metadata: string;
  headers_enc: string | null;
  signature_scheme: string;
  tls_verify: number;
  consecutive_failures: number;
  failing_since: number | null;
  circuit_open_until: number | null;
  /** JSON RequestTemplateDef; references vault secrets by name, never holds their values. */
  template: string | null;
  /** JSON EndpointAuth (basic, bearer, header, query), by vault secret name. */
  auth: string | null;
  /** JSON {cipher, keySecret, randomIv}. */
  encryption: string | null;
  redact_responses: number;
  timeout_ms: number | null;
  created_at: number;
  updated_at: number;
}

export interface EndpointSecretsTable {
  id: string;
  endpoint_id: string;
  scheme: string;
  secret_enc: string;
  created_at: number;
  expires_at: number | null;
}

export interface MessagesTable {
  id: string;
  org_id: string;
  app_id: string;
  event_id: string | null;
  event_type: string;
  payload: string;
  channels: string | null;
  tags: string | null;
  created_at: number;
  /** Scheduled send time (`deliverAt`), or null for "now". */
  deliver_at: number | null;
  /** W3C `traceparent` of the publish span (0012); null when tracing was off. */
  trace_context: string | null;
  /**
   * When the retention cleaner empties `payload` (issue 11); null once it has, or once the content
   * was expunged. `payload = ''` marks removed content (never valid JSON, so never a real payload).
   */
  expires_at: number | null;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  msg_id: string;
  created_at: number;
  expires_at: number;
}

/**
 * One try of a job, outbound or forward; the ids say what it held per `kind` (as on `JobsTable`).
 * The public API shows an outbound attempt's as Svix's `appId`, `msgId`, `endpointId`.
 */
export interface AttemptsTable {
  id: string;
  org_id: string;
  /** The application (`outbound`) or the bucket (`forward`). */
  scope_id: string;
  /** The message (`outbound`) or the inbound request (`forward`). */
  item_id: string;
  /** The endpoint (`outbound`) or the bucket output (`forward`). */
  destination_id: string;
  /**
   * Its job's kind: `outbound` (message → endpoint) or `forward` (inbound request → bucket output).
   * The column defaults to `outbound`; every writer states it (required here) so a forward is never
   * mistaken for one.
   */
  kind: string;
  url: string;
  status: number;
  response_status_code: number;
  response: string;
  duration_ms: number;
  trigger_type: number;
  error_code: string | null;
  tls_verify: number;
  created_at: number;
  /** JSON {method, url, headers, body} as sent, with every secret masked; templated endpoints only. */
  request: string | null;
}

/** A pending try of one item to one destination; the ids say what they hold per `kind`. */
export interface JobsTable {
  id: string;
  org_id: string;
  /** The application (`outbound`) or the bucket (`forward`). */
  scope_id: string;
  /** The message (`outbound`) or the inbound request (`forward`). */
  item_id: string;
  /** The endpoint (`outbound`) or the bucket output (`forward`). */
  destination_id: string;
  attempt: number;
  trigger_type: number;
  run_at: number;
  locked_by: string | null;
  created_at: number;
  /** `outbound` (message → endpoint) or `forward` (inbound request → bucket output). */
  kind: Generated<string>;
  /**
   * The worker holding this job's item in memory only (an ephemeral bucket's request): only it
   * claims the job; `''` once it stopped (the next claim gives the job up). Null for the rest.
   */
  held_by: Generated<string | null>;
}

export interface BucketsTable {
  id: string;
  org_id: string;
  name: string;
  auth_type: string;
  auth_username: string | null;
  auth_secret_enc: string | null;
  ephemeral: number;
  ip_allowlist: string | null;
  rate_limit: number | null;
  retention_days: number;
  created_at: number;
  updated_at: number;
}

export interface InputsTable {
  id: string;
  bucket_id: string;
  org_id: string;
  name: string;
  /** JSON {type, header?, encoding?, prefix?}; the secret is sealed separately. */
  verification: string;
  verification_secret_enc: string | null;
  /** JSON {mode: "static", status, headers, body} | {mode: "wait", timeoutMs}. */
  response: string;
  dedupe: number;
  created_at: number;
  updated_at: number;
}

export interface OutputsTable {
  id: string;
  bucket_id: string;
  org_id: string;
  name: string;
  type: string;
  url: string | null;
  resign: number;
  signing_secret_enc: string | null;
  tls_verify: number;
  broadcast: number;
  disabled: number;
  /** Why it was disabled: a 410 Gone (0009), or every attempt failed for `disableAfter`. */
  disabled_reason: Generated<string | null>;
  /** Deliveries per second, or null for no limit. */
  rate_limit: Generated<number | null>;
  consecutive_failures: Generated<number>;
  failing_since: Generated<number | null>;
  circuit_open_until: Generated<number | null>;
  created_at: number;
  updated_at: number;
}

export interface InboundRequestsTable {
  id: string;
  org_id: string;
  bucket_id: string;
  input_id: string;
  /** What Hookwarden answered the caller. */
  status_code: number;
  size: number;
  /** Sealed JSON {method, path, query, headers, body(base64)}; null for ephemeral buckets. */
  data_enc: string | null;
  received_at: number;
  /** W3C `traceparent` of the ingress span (0012); null when tracing was off. */
  trace_context: string | null;
}

export interface InboundDedupeTable {
  input_id: string;
  delivery_id: string;
  expires_at: number;
}

export interface InboundRejectionsTable {
  id: string;
  org_id: string | null;
  bucket_id: string | null;
  input_id: string;
  status_code: number;
  reason: string;
  at: number;
  /** Migration 0014; null on older rows (their `reason` starts with the code). */
  code: string | null;
  method: string | null;
}

export interface AgentTokensTable {
  id: string;
  org_id: string;
  name: string;
  /** Public half of the credential (`ak_...`). */
  key: string;
  /** SHA-256 of the secret half; the secret itself is never stored. */
  secret_hash: string;
  /** JSON list of bucket ids this token may subscribe to. */
  buckets: string;
  mode: string;
  created_at: number;
}

export interface VaultSecretsTable {
  app_id: string;
  name: string;
  value_enc: string;
  created_at: number;
  updated_at: number;
}

/** Issue 14: one row per saved version of a function (src/functions). */
export interface FunctionsTable {
  id: string;
  org_id: string;
  /** "app" or "bucket". */
  scope: string;
  scope_id: string;
  name: string;
  version: number;
  code: string;
  created_at: number;
}

export interface EndpointTransformationsTable {
  endpoint_id: string;
  app_id: string;
  function_name: string;
  enabled: number;
  updated_at: number;
}

export interface OutputTransformationsTable {
  output_id: string;
  bucket_id: string;
  function_name: string;
  updated_at: number;
}

export interface InputTransformationsTable {
  input_id: string;
  bucket_id: string;
  function_name: string;
  updated_at: number;
}

export interface Database {
  orgs: OrgsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
  applications: ApplicationsTable;
  event_types: EventTypesTable;
  endpoints: EndpointsTable;
  endpoint_secrets: EndpointSecretsTable;
  messages: MessagesTable;
  idempotency_keys: IdempotencyKeysTable;
  attempts: AttemptsTable;
  jobs: JobsTable;
  vault_secrets: VaultSecretsTable;
  buckets: BucketsTable;
  inputs: InputsTable;
  outputs: OutputsTable;
  inbound_requests: InboundRequestsTable;
  inbound_dedupe: InboundDedupeTable;
  inbound_rejections: InboundRejectionsTable;
  agent_tokens: AgentTokensTable;
  functions: FunctionsTable;
  endpoint_transformations: EndpointTransformationsTable;
  output_transformations: OutputTransformationsTable;
  input_transformations: InputTransformationsTable;
  incident_pauses: IncidentPausesTable;
  endpoint_events: EndpointEventsTable;
}

/** Issue 13: an operational event that names an endpoint, kept for its page (src/operational/endpoint-log.ts). */
export interface EndpointEventsTable {
  id: string;
  endpoint_id: string;
  type: string;
  /** The event's `data` as JSON: ids, times, status codes; never a secret. */
  data: string;
  created_at: number;
}

/** Issue 12: a paused application, bucket or organisation (`id` is that scope's id); see src/incident. */
export interface IncidentPausesTable {
  id: string;
  org_id: string;
  kind: string;
  actor: string;
  created_at: number;
}
