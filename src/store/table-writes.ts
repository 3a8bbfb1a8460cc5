import type { OperationNode } from "kysely";

/**
 * Tells this process's caches that rows of a table changed: every insert, update or delete built
 * with Kysely through this store that changed a row, on any connection, once when the statement
 * ran and again when its transaction ended (so a cache refilled meanwhile from another connection,
 * which could not see the write yet, is dropped too); and writes of other processes on the same
 * database: PostgreSQL nodes announce their committed writes to each other (NOTIFY, `broadcast`),
 * and SQLite tells when another connection committed (`PRAGMA data_version`, `elsewhere`), which
 * `check` asks before a cache trusts an entry. Raw SQL (`sql\`…\``, store/hot.ts) is not parsed.
 */
/**
 * The tables whose rows some process caches (delivery/endpoint-cache.ts,
 * ingress/forward-transform.ts, ingress/output-cache.ts, messages/publisher.ts): their writes are
 * announced to the other processes even by one that caches nothing (a CLI command).
 */
export const CACHED_TABLES: readonly string[] = [
  "applications",
  "endpoints",
  "endpoint_secrets",
  "endpoint_transformations",
  "vault_secrets",
  "input_transformations",
  "output_transformations",
  "buckets",
  "outputs",
];
const ANNOUNCED = new Set(CACHED_TABLES);

export class TableWrites {
  readonly #watchers = new Map<string, Set<() => void>>();
  readonly #broadcast: ((table: string) => void) | undefined;
  readonly #elsewhere: (() => boolean) | undefined;
  #checked = false;

  /**
   * `broadcast`: tells other processes that this one committed a write to `table`;
   * `elsewhere`: whether another process committed anything since it was last asked.
   */
  constructor(opts: { broadcast?: (table: string) => void; elsewhere?: () => boolean } = {}) {
    this.#broadcast = opts.broadcast;
    this.#elsewhere = opts.elsewhere;
  }

  /** Calls `fn` after each write to one of `tables`; returns the function that stops it. */
  watch(tables: readonly string[], fn: () => void): () => void {
    for (const t of tables) {
      const set = this.#watchers.get(t) ?? new Set();
      set.add(fn);
      this.#watchers.set(t, set);
    }
    return () => {
      for (const t of tables) this.#watchers.get(t)?.delete(fn);
    };
  }

  /** Whether a write to `table` concerns anyone: a watcher here, or another process's cache. */
  concerns(table: string): boolean {
    return ANNOUNCED.has(table) || (this.#watchers.get(table)?.size ?? 0) > 0;
  }

  /** This process wrote `table`; `committed`: the write is visible to others now. */
  wrote(table: string, committed: boolean): void {
    this.heard(table);
    if (committed && ANNOUNCED.has(table)) this.#broadcast?.(table);
  }

  /** Another process wrote `table` (undefined: tables unknown, every watcher is told). */
  heard(table?: string): void {
    if (table !== undefined) {
      for (const fn of this.#watchers.get(table) ?? []) fn();
      return;
    }
    const all = new Set<() => void>();
    for (const set of this.#watchers.values()) for (const fn of set) all.add(fn);
    for (const fn of all) fn();
  }

  /**
   * Before a cache trusts what it holds: tells every watcher if another process may have written.
   * Asked once per event-loop turn (an ingest batch asked three times per request).
   */
  check(): void {
    if (!this.#elsewhere || this.#checked) return;
    this.#checked = true;
    setImmediate(() => (this.#checked = false));
    if (this.#elsewhere()) this.heard();
  }
}

/** The table an insert, update or delete writes, when Kysely built it. */
export function writtenTable(node: OperationNode): string | undefined {
  const n = node as unknown as Record<string, unknown>;
  const target = node.kind === "InsertQueryNode" ? n.into : node.kind === "UpdateQueryNode" ? n.table : node.kind === "DeleteQueryNode" ? (n.from as { froms?: unknown[] } | undefined)?.froms?.[0] : undefined;
  return tableName(target);
}

function tableName(node: unknown): string | undefined {
  const n = node as { kind?: string; node?: unknown; table?: { identifier?: { name?: unknown } } } | undefined;
  if (n?.kind === "AliasNode") return tableName(n.node);
  if (n?.kind === "TableNode" && typeof n.table?.identifier?.name === "string") return n.table.identifier.name;
  return undefined;
}

/**
 * `readThrough`'s first step alone: the fresh entry for `key`, or `undefined` when it must be
 * loaded. For a caller that can answer without a promise on a hit (a forward asks two such caches
 * per request).
 */
export function freshEntry<V>(writes: TableWrites, cache: { get(key: string): { value: V | undefined } | undefined }, key: string): { value: V | undefined } | undefined {
  writes.check();
  return cache.get(key);
}

/**
 * Reads `key` through `cache`: a fresh entry, or `load()`, kept unless one of `tables` was
 * written while it ran (the read may predate that write).
 */
export async function readThrough<V>(writes: TableWrites, tables: readonly string[], cache: { get(key: string): { value: V | undefined } | undefined; set(key: string, value: V | undefined): void }, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
  const read = await readManyThrough(writes, tables, cache, [key], async () => {
    const value = await load();
    return new Map(value === undefined ? [] : [[key, value]]);
  });
  return read.get(key);
}

/**
 * `readThrough` for several keys at once: the fresh entries, and `load(missing)` for the others
 * (a key `load` leaves out is remembered as missing: `undefined`).
 */
export async function readManyThrough<V>(
  writes: TableWrites,
  tables: readonly string[],
  cache: { get(key: string): { value: V | undefined } | undefined; set(key: string, value: V | undefined): void },
  keys: Iterable<string>,
  load: (missing: string[]) => Promise<Map<string, V>>,
): Promise<Map<string, V>> {
  writes.check();
  const out = new Map<string, V>();
  const missing: string[] = [];
  for (const key of new Set(keys)) {
    const hit = cache.get(key);
    if (!hit) missing.push(key);
    else if (hit.value !== undefined) out.set(key, hit.value);
  }
  if (missing.length === 0) return out;
  let emptied = false;
  const stop = writes.watch(tables, () => (emptied = true));
  try {
    const loaded = await load(missing);
    for (const key of missing) {
      const value = loaded.get(key);
      if (!emptied) cache.set(key, value);
      if (value !== undefined) out.set(key, value);
    }
    return out;
  } finally {
    stop();
  }
}
