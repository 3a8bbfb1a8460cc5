import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SecretValue } from "../vault/secret-value.js";
import { ConfigError, loadConfig, SVIX_RETRY_SCHEDULE, type ConfigInput } from "./index.js";

/** Svix's documented schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
const SVIX_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

function configError(flags: Partial<ConfigInput>, env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(flags, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig defaults", () => {
  it("retries on Svix's schedule", () => {
    expect(loadConfig({}, {}).retrySchedule).toEqual(SVIX_MS);
    expect(SVIX_RETRY_SCHEDULE).toEqual(SVIX_MS);
  });

  it("listens on loopback, blocks private networks and keeps secrets write-only", () => {
    const c = loadConfig({}, {});
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8071);
    expect(c.allowPrivateNetworks).toEqual([]);
    expect(c.allowSecretReveal).toBe(false);
    expect(c.requestTimeout).toBe(30_000);
    expect(c.leaseDuration).toBeGreaterThan(c.requestTimeout);
    expect(c.masterKey).toBeUndefined();
    expect(c.adminToken).toBeUndefined();
    expect(c.databaseUrl).toBeUndefined();
    expect(c.logLevel).toBe("info");
  });
});

describe("loadConfig precedence: flags over environment over defaults", () => {
  const env = {
    HOOKWARDEN_PORT: "9000",
    HOOKWARDEN_HOST: "0.0.0.0",
    HOOKWARDEN_RETRY_SCHEDULE: "1s, 2s,1m",
    HOOKWARDEN_REQUEST_TIMEOUT: "10s",
    HOOKWARDEN_ALLOW_PRIVATE_NETWORKS: "10.0.0.0/8, 127.0.0.1",
    HOOKWARDEN_ALLOW_SECRET_REVEAL: "true",
    HOOKWARDEN_LOG_LEVEL: "debug",
    HOOKWARDEN_DATABASE_URL: "postgres://u@db:5432/hw",
    UNRELATED: "ignored",
  };

  it("reads the environment over the defaults", () => {
    const c = loadConfig({}, env);
    expect(c.port).toBe(9000);
    expect(c.host).toBe("0.0.0.0");
    expect(c.retrySchedule).toEqual([1_000, 2_000, 60_000]);
    expect(c.requestTimeout).toBe(10_000);
    expect(c.leaseDuration).toBeGreaterThan(10_000);
    expect(c.allowPrivateNetworks).toEqual(["10.0.0.0/8", "127.0.0.1"]);
    expect(c.allowSecretReveal).toBe(true);
    expect(c.logLevel).toBe("debug");
    expect(c.databaseUrl).toBe("postgres://u@db:5432/hw");
    expect(c.circuitBreakerThreshold).toBe(10);
  });

  it("lets flags win over the environment, and an undefined flag leaves the environment's value", () => {
    const c = loadConfig({ port: 0, retrySchedule: "0s,1s", requestTimeout: 5_000, allowSecretReveal: false, logLevel: undefined }, env);
    expect(c.port).toBe(0);
    expect(c.retrySchedule).toEqual([0, 1_000]);
    expect(c.requestTimeout).toBe(5_000);
    expect(c.allowSecretReveal).toBe(false);
    expect(c.logLevel).toBe("debug");
    expect(c.host).toBe("0.0.0.0");
  });

  it("reads booleans as true/false/1/0", () => {
    expect(loadConfig({}, { HOOKWARDEN_ALLOW_SECRET_REVEAL: "1" }).allowSecretReveal).toBe(true);
    expect(loadConfig({}, { HOOKWARDEN_ALLOW_SECRET_REVEAL: "0" }).allowSecretReveal).toBe(false);
    expect(loadConfig({}, { HOOKWARDEN_ALLOW_SECRET_REVEAL: "false" }).allowSecretReveal).toBe(false);
  });

  it("treats an empty or blank variable as unset (a blank port is not port 0)", () => {
    const c = loadConfig({}, { HOOKWARDEN_PORT: " ", HOOKWARDEN_HOST: "", HOOKWARDEN_RETRY_SCHEDULE: "  ", HOOKWARDEN_MASTER_KEY: "" });
    expect(c.port).toBe(8071);
    expect(c.host).toBe("127.0.0.1");
    expect(c.retrySchedule).toEqual(SVIX_MS);
    expect(c.masterKey).toBeUndefined();
  });

  it("reads process.env when no environment is passed", () => {
    vi.stubEnv("HOOKWARDEN_PORT", "8123");
    expect(loadConfig({}).port).toBe(8123);
  });

  afterEach(() => vi.unstubAllEnvs());
});

describe("loadConfig refuses invalid values", () => {
  it.each([
    [{ HOOKWARDEN_PORT: "http" }, "port"],
    [{ HOOKWARDEN_PORT: "70000" }, "port"],
    [{ HOOKWARDEN_REQUEST_TIMEOUT: "banana" }, "requestTimeout"],
    [{ HOOKWARDEN_RETRY_SCHEDULE: "5s,soon" }, "retrySchedule"],
    [{ HOOKWARDEN_ALLOW_PRIVATE_NETWORKS: "10.0.0.0/8,intranet" }, "allowPrivateNetworks"],
    [{ HOOKWARDEN_ALLOW_SECRET_REVEAL: "yes" }, "allowSecretReveal"],
    [{ HOOKWARDEN_LOG_LEVEL: "verbose" }, "logLevel"],
    [{ HOOKWARDEN_DATABASE_URL: "mysql://db/hw" }, "databaseUrl"],
    [{ HOOKWARDEN_DATABASE_SCHEMA: "Drop Table" }, "databaseSchema"],
    [{ HOOKWARDEN_DELIVERY_CONCURRENCY: "0" }, "deliveryConcurrency"],
    [{ HOOKWARDEN_MAX_PAYLOAD_SIZE: "10" }, "maxPayloadSize"],
    [{ HOOKWARDEN_POLL_INTERVAL: "-1s" }, "pollInterval"],
  ])("%j names the bad key", (env, key) => {
    const message = configError({}, env);
    expect(message).toMatch(new RegExp(`^\\s+${key}: `, "m"));
    expect(message.split("\n").filter((l) => l.startsWith("  "))).toHaveLength(1);
  });

  it("says what a duration looks like instead of a bare 'Invalid input'", () => {
    expect(configError({}, { HOOKWARDEN_REQUEST_TIMEOUT: "banana" })).toContain('requestTimeout: "banana" is not a duration (e.g. 500ms');
    expect(configError({ retrySchedule: "5s,soon" })).toContain('retrySchedule: "soon" is not a duration');
    expect(configError({}, { HOOKWARDEN_SHUTDOWN_GRACE: "5 parsecs" })).toContain("shutdownGrace: ");
  });

  it("lists every bad key at once", () => {
    const message = configError({ port: -1 }, { HOOKWARDEN_LOG_LEVEL: "loud", HOOKWARDEN_REQUEST_TIMEOUT: "1m" });
    expect(message).toMatch(/^invalid configuration:/);
    for (const key of ["port", "logLevel", "requestTimeout"]) expect(message).toMatch(new RegExp(`^\\s+${key}: `, "m"));
  });

  it("refuses a request timeout above 30 s or of zero, and accepts 30 s exactly", () => {
    expect(configError({}, { HOOKWARDEN_REQUEST_TIMEOUT: "31s" })).toContain("requestTimeout: must be between 1ms and 30s");
    expect(configError({ requestTimeout: 30_001 })).toContain("requestTimeout");
    expect(configError({ requestTimeout: "0s" })).toContain("requestTimeout");
    expect(configError({ requestTimeout: -5 })).toContain("requestTimeout");
    expect(loadConfig({ requestTimeout: "30s" }, {}).requestTimeout).toBe(30_000);
    expect(loadConfig({}, { HOOKWARDEN_REQUEST_TIMEOUT: "1ms" }).requestTimeout).toBe(1);
  });

  it("refuses a short admin token without printing it", () => {
    const token = "hwk_shorttoken123";
    const message = configError({}, { HOOKWARDEN_ADMIN_TOKEN: token });
    expect(message).toContain("adminToken: must be at least 24 characters");
    expect(message).not.toContain(token);
  });
});

describe("the Config object", () => {
  it("is frozen, lists included", () => {
    const c = loadConfig({ allowPrivateNetworks: ["127.0.0.0/8"] }, {});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.retrySchedule)).toBe(true);
    expect(Object.isFrozen(c.allowPrivateNetworks)).toBe(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (c.retrySchedule as number[]).push(1)).toThrow(TypeError);
    expect(() => (c.allowPrivateNetworks as string[]).push("0.0.0.0/0")).toThrow(TypeError);
    expect(c.port).toBe(8071);
  });

  it("does not share its lists with the caller's input or with other configs", () => {
    const nets = ["10.0.0.0/8"];
    const c = loadConfig({ allowPrivateNetworks: nets }, {});
    nets.push("0.0.0.0/0");
    expect(c.allowPrivateNetworks).toEqual(["10.0.0.0/8"]);
    expect(loadConfig({}, {}).retrySchedule).not.toBe(loadConfig({}, {}).retrySchedule);
  });

  it("holds the master keys and the admin token as SecretValues that do not print", () => {
    const masterKey = randomBytes(32).toString("base64");
    const previous = randomBytes(32).toString("base64");
    const adminToken = `hwk_${randomBytes(24).toString("hex")}`;
    const c = loadConfig({ adminToken }, { HOOKWARDEN_MASTER_KEY: masterKey, HOOKWARDEN_MASTER_KEY_PREVIOUS: previous });
    expect(c.masterKey).toBeInstanceOf(SecretValue);
    expect(c.masterKeyPrevious).toBeInstanceOf(SecretValue);
    expect(c.adminToken).toBeInstanceOf(SecretValue);
    expect(c.masterKey?.reveal()).toBe(masterKey);
    expect(c.masterKeyPrevious?.reveal()).toBe(previous);
    expect(c.adminToken?.reveal()).toBe(adminToken);
    for (const printed of [JSON.stringify(c), inspect(c, { depth: 10 }), `${c.masterKey} ${c.adminToken}`, String(Object.values(c))]) {
      for (const secret of [masterKey, previous, adminToken]) expect(printed).not.toContain(secret);
    }
    expect(JSON.parse(JSON.stringify(c))).toMatchObject({ masterKey: "******", masterKeyPrevious: "******", adminToken: "******" });
  });
});

describe("TLS settings", () => {
  it("takes a certificate and a key together, from flags or the environment", () => {
    expect(loadConfig({ tlsCert: "/etc/hw/cert.pem", tlsKey: "/etc/hw/key.pem" }, {})).toMatchObject({ tlsCert: "/etc/hw/cert.pem", tlsKey: "/etc/hw/key.pem" });
    expect(loadConfig({}, { HOOKWARDEN_TLS_CERT: "/c.pem", HOOKWARDEN_TLS_KEY: "/k.pem" })).toMatchObject({ tlsCert: "/c.pem", tlsKey: "/k.pem" });
    expect(loadConfig({}, {}).tlsCert).toBeUndefined();
  });

  it("refuses one without the other with a clear error", () => {
    expect(configError({ tlsCert: "/etc/hw/cert.pem" })).toContain("give both --tls-cert and --tls-key, or neither");
    expect(configError({}, { HOOKWARDEN_TLS_KEY: "/k.pem" })).toContain("give both --tls-cert and --tls-key, or neither");
  });

  it("refuses the API's port as the agents' gRPC port (the default 8071 too)", () => {
    expect(configError({ grpcPort: 8071 })).toContain("grpcPort: must differ from --port");
    expect(configError({}, { HOOKWARDEN_PORT: "7443", HOOKWARDEN_GRPC_PORT: "7443" })).toContain("grpcPort: must differ from --port");
    expect(loadConfig({ grpcPort: 7443 }, {}).grpcPort).toBe(7443);
    // Two random ports: never the same one.
    expect(loadConfig({ port: 0, grpcPort: 0 }, {}).grpcPort).toBe(0);
  });
});
