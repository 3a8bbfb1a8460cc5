import type { Dialect } from "../../src/store/index.js";

/** Where PostgreSQL tests run; `.ci/run` makes sure it is up. A test never skips it silently. */
export const TEST_PG_URL = process.env.HOOKWARDEN_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * Every storage-touching suite loops over these (as Kysely's own suite does). Narrow with
 * `HOOKWARDEN_TEST_DIALECTS=sqlite` while iterating locally; CI runs both.
 */
export const DIALECTS: Dialect[] = (process.env.HOOKWARDEN_TEST_DIALECTS ?? "sqlite,postgres")
  .split(",")
  .map((d) => d.trim())
  .filter((d): d is Dialect => d === "sqlite" || d === "postgres");
