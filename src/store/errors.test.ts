import { describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { classifyStorageError, describeStorageCause, isStorageFault, STORAGE_RETRY_AFTER_S } from "./errors.js";

const coded = (code: string, message = "boom") => Object.assign(new Error(message), { code });

describe("classifyStorageError", () => {
  it.each([
    ["SQLITE_FULL", "E_STORAGE_FULL", 507],
    ["53100", "E_STORAGE_FULL", 507], // PostgreSQL disk_full
    ["ENOSPC", "E_STORAGE_FULL", 507],
    ["57P01", "E_UNAVAILABLE", 503], // admin_shutdown
    ["57P03", "E_UNAVAILABLE", 503], // cannot_connect_now
    ["08006", "E_UNAVAILABLE", 503], // connection_failure
    ["08P01", "E_UNAVAILABLE", 503],
    ["ECONNREFUSED", "E_UNAVAILABLE", 503],
    ["ECONNRESET", "E_UNAVAILABLE", 503],
  ])("%s is %s (%d) with Retry-After", (code, expected, status) => {
    const fault = classifyStorageError(coded(code));
    expect(fault).toBeInstanceOf(HookwardenError);
    expect(fault).toMatchObject({ code: expected, status, retryAfter: STORAGE_RETRY_AFTER_S });
    expect(describeStorageCause(fault)).toBe(`${code} boom`);
  });

  it("recognises pg's uncoded messages, causes and aggregate errors", () => {
    expect(classifyStorageError(new Error("Connection terminated unexpectedly"))?.code).toBe("E_UNAVAILABLE");
    expect(classifyStorageError(new Error("wrapped", { cause: coded("SQLITE_FULL") }))?.code).toBe("E_STORAGE_FULL");
    expect(classifyStorageError(new AggregateError([coded("ECONNREFUSED")], "connect failed"))?.code).toBe("E_UNAVAILABLE");
  });

  it("leaves every other error alone: constraint violations, bad SQL, load shedding", () => {
    expect(classifyStorageError(coded("23505"))).toBeUndefined();
    expect(classifyStorageError(coded("SQLITE_CONSTRAINT_UNIQUE"))).toBeUndefined();
    expect(classifyStorageError(coded("42P01"))).toBeUndefined();
    expect(classifyStorageError(new Error("no such table: x"))).toBeUndefined();
    expect(isStorageFault(new HookwardenError("E_UNAVAILABLE", 503, "Too many messages waiting"))).toBe(false);
    expect(classifyStorageError(null)).toBeUndefined();
  });
});
