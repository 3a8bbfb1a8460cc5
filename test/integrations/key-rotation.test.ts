import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyring, keyId } from "../../src/vault/envelope.js";
import { DIALECTS } from "../helpers/dialects.js";
import {
  canary,
  dropStorage,
  gatewaySecrets,
  newStorage,
  putSecret,
  rawSql,
  runCli,
  startChildGateway,
  storageArgs,
  type ChildGateway,
  type StorageLocation,
} from "../helpers/integrations.js";
import { Receiver, type Received } from "../helpers/receiver.js";

const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const newKey = () => randomBytes(32).toString("base64");
/** Each step starts real processes (a tsx start costs 2-3 s on the 2-core CI machine). */
const SLOW = 90_000;

/** The key id of every sealed value in the database, per column. */
async function keyIdsInUse(loc: StorageLocation): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, column] of [
    ["vault_secrets", "value_enc"],
    ["endpoint_secrets", "secret_enc"],
    ["endpoints", "headers_enc"],
  ] as const) {
    const rows = await rawSql(loc, `select ${column} as v from ${table} where ${column} is not null`);
    out[`${table}.${column}`] = [...new Set(rows.map((r) => String(r.v).split(":")[1]!))];
  }
  return out;
}

const allUnder = (kid: string) => ({ "vault_secrets.value_enc": [kid], "endpoint_secrets.secret_enc": [kid], "endpoints.headers_enc": [kid] });

/**
 * One installation with every kind of sealed value: vault secrets (template header and basic
 * auth), a known signing secret and a sensitive custom header. `deliver` proves them all intact.
 */
function installation() {
  const values = { vault: canary("vault"), password: canary("password"), header: canary("xapikey") };
  let appId = "";
  let n = 0;
  return {
    values,
    async setUp(gw: ChildGateway, receiver: Receiver): Promise<void> {
      const app = await gw.api("POST", "/api/v1/app", { name: "rotation" });
      expect(app.status, app.text).toBe(201);
      appId = app.body.id;
      await putSecret(gw.api, appId, "CRM_TOKEN", values.vault);
      await putSecret(gw.api, appId, "CRM_PASSWORD", values.password);
      const ep = await gw.api("POST", `/api/v1/app/${appId}/endpoint`, {
        url: `${receiver.url}/rotated`,
        secret: SIGNING_SECRET,
        headers: { "X-Api-Key": values.header },
        template: { headers: { "X-Crm-Token": "{{secrets.CRM_TOKEN}}" } },
        auth: { type: "basic", username: "crm", passwordSecret: "CRM_PASSWORD" },
      });
      expect(ep.status, ep.text).toBe(201);
    },
    async deliver(gw: ChildGateway, receiver: Receiver): Promise<Received> {
      const before = receiver.received.length;
      const payload = { n: ++n };
      const msg = await gw.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "rotation.test", payload });
      expect(msg.status, msg.text).toBe(202);
      await receiver.waitFor(before + 1);
      const r = receiver.received[before]!;
      expect(r.headers["x-crm-token"]).toBe(values.vault);
      expect(r.headers.authorization).toBe(`Basic ${Buffer.from(`crm:${values.password}`).toString("base64")}`);
      expect(r.headers["x-api-key"]).toBe(values.header);
      expect(new Webhook(SIGNING_SECRET).verify(r.body, r.headers as Record<string, string>)).toEqual(payload);
      return r;
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`hookwarden keys rotate with environment keys (${dialect})`, () => {
    let loc: StorageLocation;
    let receiver: Receiver;
    let gw: ChildGateway | undefined;
    const { adminToken } = gatewaySecrets();
    const oldKey = newKey();
    const nextKey = newKey();
    const inst = installation();
    const kid = (k: string) => keyId(Buffer.from(k, "base64"));
    const rotate = (env: Record<string, string>) => runCli(["keys", "rotate", ...storageArgs(loc)], env);

    beforeAll(async () => {
      loc = newStorage(dialect);
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await gw?.stop();
      await receiver?.stop();
      if (loc) await dropStorage(loc);
    });

    it("delivers with every secret sealed under the old key", async () => {
      gw = await startChildGateway(loc, { adminToken, masterKey: oldKey });
      await inst.setUp(gw, receiver);
      await inst.deliver(gw, receiver);
      await gw.stop();
      expect(await keyIdsInUse(loc)).toEqual(allUnder(kid(oldKey)));
    }, SLOW);

    it("refuses to rotate without the previous key, changing nothing", async () => {
      const out = await rotate({ HOOKWARDEN_MASTER_KEY: nextKey });
      expect(out.code).toBe(1);
      expect(out.stderr).toContain("HOOKWARDEN_MASTER_KEY_PREVIOUS");
      expect(await keyIdsInUse(loc)).toEqual(allUnder(kid(oldKey)));
    }, SLOW);

    it("re-seals every stored secret under the new key, and a second run finds nothing left to do", async () => {
      const out = await rotate({ HOOKWARDEN_MASTER_KEY: nextKey, HOOKWARDEN_MASTER_KEY_PREVIOUS: oldKey });
      expect(out.code, out.stderr).toBe(0);
      expect(out.stderr).toMatch(/vault_secrets\.value_enc: 2 re-sealed/);
      expect(out.stderr).toMatch(/endpoint_secrets\.secret_enc: 1 re-sealed/);
      expect(out.stderr).toMatch(/endpoints\.headers_enc: 1 re-sealed/);
      expect(await keyIdsInUse(loc)).toEqual(allUnder(kid(nextKey)));
      const again = await rotate({ HOOKWARDEN_MASTER_KEY: nextKey, HOOKWARDEN_MASTER_KEY_PREVIOUS: oldKey });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/vault_secrets\.value_enc: 0 re-sealed, 2 already under the current key/);
      for (const v of Object.values(inst.values)) expect(out.stderr + again.stderr).not.toContain(v);
    }, SLOW);

    it("a server holding only the new key delivers every secret intact, signed with the original secret", async () => {
      gw = await startChildGateway(loc, { adminToken, masterKey: nextKey });
      await inst.deliver(gw, receiver);
      for (const v of Object.values(inst.values)) expect(gw.output()).not.toContain(v);
      await gw.stop();
    }, SLOW);
  });
}

// Key-file mode locks the data directory only for embedded SQLite (one process owns it).
describe.runIf(DIALECTS.includes("sqlite"))("hookwarden keys rotate with the key file (sqlite)", () => {
  let loc: StorageLocation;
  let receiver: Receiver;
  let gw: ChildGateway | undefined;
  const { adminToken } = gatewaySecrets();
  const inst = installation();
  const keyFile = () => join(loc.dataDir, "master.key");
  const rotate = () => runCli(["keys", "rotate", ...storageArgs(loc)], {});

  beforeAll(async () => {
    loc = newStorage("sqlite");
    receiver = await new Receiver().start();
  });
  afterAll(async () => {
    await gw?.stop();
    await receiver?.stop();
    if (loc) await dropStorage(loc);
  });

  it("refuses while the server holds the data directory, then rotates after it stops", async () => {
    gw = await startChildGateway(loc, { adminToken, masterKey: undefined });
    expect(gw.output()).toContain("generated a new master key file");
    await inst.setUp(gw, receiver);
    await inst.deliver(gw, receiver);
    const original = readFileSync(keyFile(), "utf8");

    const refused = await rotate();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`Another hookwarden (pid ${gw.proc.pid}) is serving`);
    expect(readFileSync(keyFile(), "utf8")).toBe(original);
    expect(existsSync(join(loc.dataDir, "master.key.next"))).toBe(false);
    // The running server was not disturbed.
    await inst.deliver(gw, receiver);
    await gw.stop();

    const done = await rotate();
    expect(done.code, done.stderr).toBe(0);
    const rotated = readFileSync(keyFile(), "utf8");
    expect(rotated.trim()).not.toBe(original.trim());
    expect(readFileSync(join(loc.dataDir, "master.key.previous"), "utf8").trim()).toBe(original.trim());
    expect(existsSync(join(loc.dataDir, "master.key.next"))).toBe(false);
    expect(await keyIdsInUse(loc)).toEqual(allUnder(keyId(Buffer.from(rotated.trim(), "base64"))));

    gw = await startChildGateway(loc, { adminToken, masterKey: undefined });
    await inst.deliver(gw, receiver);
    await gw.stop();
  }, SLOW);

  it("resumes an interrupted rotation with the same new key; a server started half-way reads both", async () => {
    const current = Buffer.from(readFileSync(keyFile(), "utf8").trim(), "base64");
    const next = randomBytes(32);
    // The state a crash leaves: master.key.next written, one vault value already re-sealed under it.
    writeFileSync(join(loc.dataDir, "master.key.next"), `${next.toString("base64")}\n`, { mode: 0o600 });
    const [row] = await rawSql(loc, "select app_id, name, value_enc from vault_secrets where name = 'CRM_TOKEN'");
    const aad = `vault:${String(row!.app_id)}:CRM_TOKEN`;
    const resealed = new Keyring(next).seal(new Keyring(current).open(String(row!.value_enc), aad), aad);
    await rawSql(loc, "update vault_secrets set value_enc = $1 where name = 'CRM_TOKEN'", [resealed]);
    expect((await keyIdsInUse(loc))["vault_secrets.value_enc"]!.sort()).toEqual([keyId(current), keyId(next)].sort());

    gw = await startChildGateway(loc, { adminToken, masterKey: undefined });
    await inst.deliver(gw, receiver);
    await gw.stop();

    const resumed = await rotate();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain("Resuming an interrupted rotation");
    expect(resumed.stderr).toMatch(/vault_secrets\.value_enc: 1 re-sealed, 1 already under the current key/);
    expect(readFileSync(keyFile(), "utf8").trim()).toBe(next.toString("base64"));
    expect(await keyIdsInUse(loc)).toEqual(allUnder(keyId(next)));
    gw = await startChildGateway(loc, { adminToken, masterKey: undefined });
    await inst.deliver(gw, receiver);
    await gw.stop();
  }, SLOW);
});
