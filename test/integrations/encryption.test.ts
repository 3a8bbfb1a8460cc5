import { createDecipheriv, randomBytes, type CipherGCMTypes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { attemptsOf, createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { putSecret, runCli } from "../helpers/integrations.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CIPHERS = [
  { cipher: "aes-256-gcm", keyBytes: 32, ivBytes: 12, aead: true },
  { cipher: "chacha20-poly1305", keyBytes: 32, ivBytes: 12, aead: true },
  { cipher: "aes-256-cbc", keyBytes: 32, ivBytes: 16, aead: false },
  { cipher: "aes-128-cbc", keyBytes: 16, ivBytes: 16, aead: false },
] as const;

/**
 * What a receiver writes with nothing but node:crypto: the body is base64; for AEAD ciphers its
 * last 16 bytes are the tag; the IV is the hex `webhook-encryption-iv` header.
 */
function receiverDecrypt(cipher: string, key: Buffer, ivHex: string, body: string): string {
  const raw = Buffer.from(body, "base64");
  const iv = Buffer.from(ivHex, "hex");
  if (cipher === "aes-256-cbc" || cipher === "aes-128-cbc") {
    const d = createDecipheriv(cipher, key, iv);
    return Buffer.concat([d.update(raw), d.final()]).toString("utf8");
  }
  const d = createDecipheriv(cipher as CipherGCMTypes, key, iv, { authTagLength: 16 });
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(0, raw.length - 16)), d.final()]).toString("utf8");
}

const headersOf = (r: Received) => r.headers as Record<string, string>;

for (const dialect of DIALECTS) {
  describe(`body encryption (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    let appId: string;
    const keys = new Map<string, Buffer>();

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
      appId = await createApp(t, "encryption");
      for (const c of CIPHERS) {
        const key = randomBytes(c.keyBytes);
        keys.set(c.cipher, key);
        await putSecret(t.api, appId, `KEY_${c.cipher.replace(/-/g, "_").toUpperCase()}`, key.toString("base64"));
      }
      await putSecret(t.api, appId, "KEY_16", randomBytes(16).toString("base64"));
      await putSecret(t.api, appId, "KEY_32", randomBytes(32).toString("base64"));
      await putSecret(t.api, appId, "NOT_A_KEY", "correct horse battery staple");
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    const keySecret = (cipher: string) => `KEY_${cipher.replace(/-/g, "_").toUpperCase()}`;

    async function deliverTwo(eventType: string, payloads: Record<string, unknown>[]): Promise<Received[]> {
      const before = receiver.received.length;
      for (const payload of payloads) await publish(t, appId, { eventType, payload });
      await t.hw.worker.runUntilIdle();
      const got = receiver.received.slice(before);
      expect(got).toHaveLength(payloads.length);
      return got;
    }

    it.each(CIPHERS)("$cipher: the receiver decrypts with node:crypto, the IV is in the header and {{iv}}, the signature covers the ciphertext", async ({ cipher, ivBytes, aead }) => {
      const eventType = `enc.${cipher}`;
      const ep = await createEndpoint(t, appId, {
        url: `${receiver.url}/unused`,
        secret: SIGNING_SECRET,
        filterTypes: [eventType],
        template: { url: `${receiver.url}/hook?iv={{iv}}` },
        encryption: { cipher, keySecret: keySecret(cipher) },
      });
      expect(ep.encryption).toEqual({ cipher, keySecret: keySecret(cipher), randomIv: true });
      expect(ep.warnings).toBeUndefined();
      const payloads = [{ cipher, text: "héllo ✓", n: 1 }, { cipher, text: "héllo ✓", n: 1 }];
      const got = await deliverTwo(eventType, payloads);
      for (const [i, r] of got.entries()) {
        const iv = String(r.headers["webhook-encryption-iv"]);
        expect(iv).toMatch(new RegExp(`^[0-9a-f]{${ivBytes * 2}}$`));
        expect(new URL(r.url, receiver.url).searchParams.get("iv")).toBe(iv);
        expect(r.headers["webhook-encryption"]).toBe(cipher);
        expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
        expect(r.body).toMatch(/^[A-Za-z0-9+/]+=*$/);
        expect(r.body).not.toContain("llo");
        expect(JSON.parse(receiverDecrypt(cipher, keys.get(cipher)!, iv, r.body))).toEqual(payloads[i]);
        // Signed over the body as sent (the base64 ciphertext), verified by the official library.
        expect(() => new Webhook(SIGNING_SECRET).verify(r.body, headersOf(r), { jsonParse: false })).not.toThrow();
        const flipped = (r.body[0] === "A" ? "B" : "A") + r.body.slice(1);
        expect(() => new Webhook(SIGNING_SECRET).verify(flipped, headersOf(r), { jsonParse: false })).toThrow();
        if (aead) {
          // The tag authenticates the ciphertext: one flipped byte fails to decrypt.
          const raw = Buffer.from(r.body, "base64");
          raw[0]! ^= 1;
          expect(() => receiverDecrypt(cipher, keys.get(cipher)!, iv, raw.toString("base64"))).toThrow();
        }
      }
      // Equal payloads, fresh IVs: different ciphertexts.
      expect(got[0]!.headers["webhook-encryption-iv"]).not.toBe(got[1]!.headers["webhook-encryption-iv"]);
      expect(got[0]!.body).not.toBe(got[1]!.body);
    });

    it("`hookwarden decrypt` recovers a delivered body", async () => {
      const r = receiver.received.find((x) => x.headers["webhook-encryption"] === "chacha20-poly1305")!;
      const dir = mkdtempSync(join(tmpdir(), "hookwarden-decrypt-"));
      try {
        writeFileSync(join(dir, "body.txt"), r.body);
        const out = await runCli(["decrypt", join(dir, "body.txt"), "--cipher", "chacha20-poly1305", "--iv", String(r.headers["webhook-encryption-iv"])], {
          HOOKWARDEN_DECRYPT_KEY: keys.get("chacha20-poly1305")!.toString("base64"),
        });
        expect(out.code, out.stderr).toBe(0);
        expect(JSON.parse(out.stdout)).toEqual({ cipher: "chacha20-poly1305", text: "héllo ✓", n: 1 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it.each(["aes-256-gcm", "chacha20-poly1305"])("refuses randomIv: false for %s (a repeated nonce breaks AEAD)", async (cipher) => {
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/x`, encryption: { cipher, keySecret: keySecret(cipher), randomIv: false } });
      expect(res.status, res.text).toBe(422);
      expect(res.body.code).toBe("E_ENCRYPTION_INVALID");
      expect(res.body.detail[0].loc).toEqual(["body", "encryption", "randomIv"]);
    });

    it.each(["aes-256-cbc", "aes-128-cbc"] as const)("allows randomIv: false for %s with an E_STATIC_IV warning, and sends an all-zero IV", async (cipher) => {
      const eventType = `static.${cipher}`;
      const ep = await createEndpoint(t, appId, {
        url: `${receiver.url}/static`,
        secret: SIGNING_SECRET,
        filterTypes: [eventType],
        template: { url: `${receiver.url}/static?iv={{iv}}` },
        encryption: { cipher, keySecret: keySecret(cipher), randomIv: false },
      });
      expect(ep.warnings.map((w: { code: string }) => w.code)).toEqual(["E_STATIC_IV"]);
      expect((await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}`)).body.warnings.map((w: { code: string }) => w.code)).toEqual(["E_STATIC_IV"]);
      const got = await deliverTwo(eventType, [{ same: true }, { same: true }]);
      const zero = "00".repeat(16);
      for (const r of got) {
        expect(r.headers["webhook-encryption-iv"]).toBe(zero);
        expect(new URL(r.url, receiver.url).searchParams.get("iv")).toBe(zero);
        expect(JSON.parse(receiverDecrypt(cipher, keys.get(cipher)!, zero, r.body))).toEqual({ same: true });
      }
      // What the warning is about: equal bodies give equal ciphertexts.
      expect(got[0]!.body).toBe(got[1]!.body);
    });

    it.each([
      ["aes-256-gcm", "KEY_16"],
      ["chacha20-poly1305", "KEY_16"],
      ["aes-256-cbc", "KEY_16"],
      ["aes-128-cbc", "KEY_32"],
      ["aes-256-gcm", "NOT_A_KEY"],
    ])("refuses %s with a key of the wrong size (%s) when the endpoint is saved", async (cipher, name) => {
      const res = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/x`, encryption: { cipher, keySecret: name } });
      expect(res.status, res.text).toBe(422);
      expect(res.body.code).toBe("E_ENCRYPTION_INVALID");
      expect(res.text).toContain(`${cipher} needs a key of`);
    });

    it("records the attempt with the plaintext request, not the ciphertext, and no key", async () => {
      const r = receiver.received.find((x) => x.headers["webhook-encryption"] === "aes-256-gcm")!;
      const [attempt] = (await attemptsOf(t, appId, String(r.headers["webhook-id"]))) as any[];
      expect(attempt.request.headers["webhook-encryption"]).toBe("aes-256-gcm");
      expect(JSON.parse(attempt.request.body)).toEqual({ cipher: "aes-256-gcm", text: "héllo ✓", n: 1 });
      expect(JSON.stringify(attempt)).not.toContain(keys.get("aes-256-gcm")!.toString("base64"));
    });
  });
}
