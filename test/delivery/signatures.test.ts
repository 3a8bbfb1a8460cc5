import { createPublicKey, verify as edVerify } from "node:crypto";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, getEndpoint, publish } from "../helpers/delivery.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET = "whsec_dGhpc2lzYW5vdGhlcmhpZ2hlbnRyb3B5a2V5Pz8hIQ==";
/** Short enough that a clock moved past it stays inside the verifiers' 5-minute timestamp tolerance. */
const ROTATION_OVERLAP_MS = 120_000;

/** Verifies a `v1a,` signature the way a receiver without any webhook library would. */
function verifyEd25519(publicKeyText: string, msg: Received): boolean[] {
  expect(publicKeyText).toMatch(/^whpk_/);
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKeyText.slice(5), "base64").toString("base64url") }, format: "jwk" });
  const content = Buffer.from(`${String(msg.headers["webhook-id"])}.${String(msg.headers["webhook-timestamp"])}.${msg.body}`);
  return String(msg.headers["webhook-signature"])
    .split(" ")
    .map((sig) => {
      expect(sig).toMatch(/^v1a,/);
      return edVerify(null, content, key, Buffer.from(sig.slice(4), "base64"));
    });
}

const headersOf = (r: Received) => r.headers as Record<string, string>;

for (const dialect of DIALECTS) {
  describe(`outbound signatures (${dialect})`, () => {
    let t: TestServer;
    let reveal: TestServer;
    let receiver: Receiver;
    let clock: FakeClock;

    beforeAll(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestServer(dialect, { rotationOverlap: ROTATION_OVERLAP_MS }, { clock });
      reveal = await startTestServer(dialect, { allowSecretReveal: true });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await reveal?.stop();
      await receiver?.stop();
    });

    /** Publishes one message and returns what the receiver got for it. */
    async function deliverOne(server: TestServer, appId: string, payload: Record<string, unknown>): Promise<Received> {
      const msg = await publish(server, appId, { payload });
      await server.hw.worker.runUntilIdle();
      const got = receiver.received.filter((r) => r.headers["webhook-id"] === msg.id);
      expect(got).toHaveLength(1);
      return got[0]!;
    }

    it("signs with v1 HMAC that standardwebhooks and the svix library both accept", async () => {
      const appId = await createApp(t, "hmac");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/hmac`, secret: SECRET });
      expect(ep.secret).toBeUndefined(); // the caller already knows it
      const r = await deliverOne(t, appId, { kind: "hmac", n: 1 });
      expect(String(r.headers["webhook-signature"])).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(new StandardWebhook(SECRET).verify(r.body, headersOf(r))).toEqual({ kind: "hmac", n: 1 });
      expect(new SvixWebhook(SECRET).verify(r.body, headersOf(r))).toEqual({ kind: "hmac", n: 1 });
      expect(() => new StandardWebhook(NEW_SECRET).verify(r.body, headersOf(r))).toThrow();
      expect(() => new StandardWebhook(SECRET).verify(r.body.replace("hmac", "hmaC"), headersOf(r))).toThrow();
    });

    it("shows a generated secret once, in the create response, and it verifies deliveries", async () => {
      const appId = await createApp(t, "generated");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/generated` });
      expect(ep.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
      expect(ep.warnings).toBeUndefined();
      expect((await getEndpoint(t, appId, ep.id)).secret).toBeUndefined();
      const secretRes = await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/secret`);
      expect(secretRes.status).toBe(403);
      expect(secretRes.body.code).toBe("E_SECRET_WRITE_ONLY");
      expect(secretRes.text).not.toContain(ep.secret.slice(6));

      const r = await deliverOne(t, appId, { generated: true });
      expect(new StandardWebhook(ep.secret).verify(r.body, headersOf(r))).toEqual({ generated: true });
      expect(new SvixWebhook(ep.secret).verify(r.body, headersOf(r))).toEqual({ generated: true });
    });

    it("reveals the secret on GET .../secret only when the server allows it", async () => {
      const appId = await createApp(reveal, "reveal");
      const ep = await createEndpoint(reveal, appId, { url: `${receiver.url}/reveal` });
      const res = await reveal.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/secret`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.key).toBe(ep.secret);
      const viaSvix = await reveal.svix.endpoint.getSecret(appId, ep.id);
      expect(viaSvix.key).toBe(ep.secret);
      const r = await deliverOne(reveal, appId, { revealed: true });
      expect(new SvixWebhook(res.body.key).verify(r.body, headersOf(r))).toEqual({ revealed: true });
    });

    it("signs ed25519 endpoints with v1a, verifiable with node:crypto and the whpk_ public key", async () => {
      const appId = await createApp(t, "ed25519");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ed`, signatureScheme: "ed25519" });
      expect(ep.signatureScheme).toBe("ed25519");
      expect(ep.secret).toMatch(/^whsk_/);
      expect(ep.publicKey).toMatch(/^whpk_/);
      expect((await getEndpoint(t, appId, ep.id)).secret).toBeUndefined();

      const pub = await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/secret`);
      expect(pub.status, pub.text).toBe(200);
      expect(pub.body.key).toBe(ep.publicKey);

      const r = await deliverOne(t, appId, { signed: "ed25519" });
      expect(verifyEd25519(ep.publicKey, r)).toEqual([true]);
      // A forged body, or another key, must fail.
      expect(verifyEd25519(ep.publicKey, { ...r, body: r.body.replace("ed25519", "ed25518") })).toEqual([false]);
      const other = await createEndpoint(t, appId, { url: `${receiver.url}/ed-other`, signatureScheme: "ed25519", filterTypes: ["never.sent"] });
      expect(verifyEd25519(other.publicKey, r)).toEqual([false]);
      // HMAC verifiers do not take a v1a signature as valid.
      expect(() => new StandardWebhook(SECRET).verify(r.body, headersOf(r))).toThrow();
    });

    it("accepts a caller-supplied whsk_ secret and publishes its public key", async () => {
      const appId = await createApp(t, "ed25519-own");
      const first = await createEndpoint(t, appId, { url: `${receiver.url}/ed-own-src`, signatureScheme: "ed25519", filterTypes: ["never.sent"] });
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ed-own`, secret: first.secret });
      expect(ep.signatureScheme).toBe("ed25519");
      expect(ep.secret).toBeUndefined();
      expect(ep.publicKey).toBe(first.publicKey);
      const r = await deliverOne(t, appId, { own: true });
      expect(verifyEd25519(first.publicKey, r)).toEqual([true]);
    });

    it("signs with both secrets during a rotation's overlap and only the new one after it", async () => {
      const appId = await createApp(t, "rotation");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/rotate`, secret: SECRET });
      await t.svix.endpoint.rotateSecret(appId, ep.id, { key: NEW_SECRET });

      const during = await deliverOne(t, appId, { phase: "overlap" });
      expect(String(during.headers["webhook-signature"]).split(" ")).toHaveLength(2);
      expect(new StandardWebhook(SECRET).verify(during.body, headersOf(during))).toEqual({ phase: "overlap" });
      expect(new StandardWebhook(NEW_SECRET).verify(during.body, headersOf(during))).toEqual({ phase: "overlap" });
      expect(new SvixWebhook(NEW_SECRET).verify(during.body, headersOf(during))).toEqual({ phase: "overlap" });

      clock.advance(ROTATION_OVERLAP_MS - 1_000);
      const late = await deliverOne(t, appId, { phase: "late" });
      expect(String(late.headers["webhook-signature"]).split(" ")).toHaveLength(2);

      clock.advance(2_000);
      const after = await deliverOne(t, appId, { phase: "after" });
      expect(String(after.headers["webhook-signature"]).split(" ")).toHaveLength(1);
      expect(new StandardWebhook(NEW_SECRET).verify(after.body, headersOf(after))).toEqual({ phase: "after" });
      expect(new SvixWebhook(NEW_SECRET).verify(after.body, headersOf(after))).toEqual({ phase: "after" });
      expect(() => new StandardWebhook(SECRET).verify(after.body, headersOf(after))).toThrow();
    });

    it("rotates an ed25519 endpoint: the generated key is returned once and the public key follows it", async () => {
      const appId = await createApp(t, "ed-rotation");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/ed-rotate`, signatureScheme: "ed25519" });
      const rotated = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/secret/rotate`, {});
      expect(rotated.status, rotated.text).toBe(200);
      expect(rotated.body.key).toMatch(/^whsk_/);
      const pub = await t.api("GET", `/api/v1/app/${appId}/endpoint/${ep.id}/secret`);
      expect(pub.body.key).toMatch(/^whpk_/);
      expect(pub.body.key).not.toBe(ep.publicKey);

      const r = await deliverOne(t, appId, { phase: "ed-overlap" });
      const sigs = String(r.headers["webhook-signature"]).split(" ");
      expect(sigs).toHaveLength(2);
      // Each public key verifies exactly one of the two signatures.
      expect(verifyEd25519(ep.publicKey, r).filter(Boolean)).toHaveLength(1);
      expect(verifyEd25519(pub.body.key, r).filter(Boolean)).toHaveLength(1);

      clock.advance(ROTATION_OVERLAP_MS + 1_000);
      const after = await deliverOne(t, appId, { phase: "ed-after" });
      expect(verifyEd25519(pub.body.key, after)).toEqual([true]);
      expect(verifyEd25519(ep.publicKey, after)).toEqual([false]);
    });

    it("sends no signature to an endpoint created unsigned, and warns about it", async () => {
      const appId = await createApp(t, "unsigned");
      const ep = await createEndpoint(t, appId, { url: `${receiver.url}/unsigned`, signatureScheme: "none" });
      expect(ep.signatureScheme).toBe("none");
      expect(ep.secret).toBeUndefined();
      expect(ep.warnings).toEqual([expect.objectContaining({ code: "E_ENDPOINT_UNSIGNED" })]);
      expect((await getEndpoint(t, appId, ep.id)).warnings).toEqual([expect.objectContaining({ code: "E_ENDPOINT_UNSIGNED" })]);
      const listed = await t.api("GET", `/api/v1/app/${appId}/endpoint`);
      expect(listed.body.data[0].warnings).toEqual([expect.objectContaining({ code: "E_ENDPOINT_UNSIGNED" })]);

      const r = await deliverOne(t, appId, { unsigned: true });
      expect(r.headers["webhook-signature"]).toBeUndefined();
      expect(r.headers["webhook-id"]).toMatch(/^msg_/);
      expect(r.headers["webhook-timestamp"]).toMatch(/^\d+$/);
      expect(JSON.parse(r.body)).toEqual({ unsigned: true });

      const noSecret = await t.api("POST", `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/x`, signatureScheme: "none", secret: SECRET });
      expect(noSecret.status).toBe(422);
      const rotate = await t.api("POST", `/api/v1/app/${appId}/endpoint/${ep.id}/secret/rotate`, {});
      expect(rotate.status).toBe(422);
    });
  });
}
