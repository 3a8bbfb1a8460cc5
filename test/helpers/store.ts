import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApplicationRow } from "../../src/applications/index.js";
import { FakeClock } from "../../src/clock/index.js";
import { loadConfig, type Config, type ConfigInput } from "../../src/config/index.js";
import type { Context } from "../../src/context/index.js";
import { EventBus } from "../../src/events/index.js";
import { newId } from "../../src/ids/index.js";
import { createLogger } from "../../src/logger/index.js";
import { JobQueue } from "../../src/queue/job-queue.js";
import { openStore, type Db, type Dialect, type Store } from "../../src/store/index.js";
import { Keyring } from "../../src/vault/envelope.js";
import { TEST_PG_URL } from "./dialects.js";
import { dropTestStorage } from "./server.js";

export interface TestStore {
  ctx: Context;
  config: Config;
  store: Store;
  dataDir: string;
  schema: string | undefined;
  /** Closes the store (if still open) and removes the data dir or PostgreSQL schema. */
  drop: () => Promise<void>;
}

/**
 * A migrated store on a fresh temp dir (SQLite) or a fresh `hwt_<random>` schema (PostgreSQL),
 * and a business Context around it, for tests that call domain functions directly.
 */
export async function openTestStore(dialect: Dialect, overrides: Partial<ConfigInput> = {}): Promise<TestStore> {
  const dataDir = mkdtempSync(join(tmpdir(), "hookwarden-store-"));
  const schema = dialect === "postgres" ? `hwt_${randomBytes(6).toString("hex")}` : undefined;
  const config = loadConfig(
    {
      dataDir,
      masterKey: randomBytes(32).toString("base64"),
      logLevel: "silent",
      ...(dialect === "postgres" ? { databaseUrl: TEST_PG_URL, databaseSchema: schema } : {}),
      ...overrides,
    },
    {},
  );
  const logger = createLogger({ level: "silent" });
  const store = await openStore(config, logger);
  const ctx: Context = { config, clock: new FakeClock(1_700_000_000_000), logger, store, queue: new JobQueue(store), keyring: new Keyring(randomBytes(32)), events: new EventBus() };
  let closed = false;
  return {
    ctx,
    config,
    store,
    dataDir,
    schema,
    drop: async () => {
      if (!closed) await store.close();
      closed = true;
      await dropTestStorage(dialect, dataDir, schema);
    },
  };
}

/** An organisation and one application in it, inserted directly. */
export async function insertApp(db: Db, name = "app", now = 1_700_000_000_000): Promise<ApplicationRow> {
  const orgId = newId("org");
  await db.insertInto("orgs").values({ id: orgId, name: `org-${orgId}`, created_at: now }).execute();
  const app: ApplicationRow = { id: newId("app"), org_id: orgId, uid: null, name, rate_limit: null, metadata: "{}", internal: 0, created_at: now, updated_at: now, payload_retention_days: null };
  await db.insertInto("applications").values(app).execute();
  return app;
}
