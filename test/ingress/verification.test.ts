import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { DIALECTS } from "../helpers/dialects.js";
import { github, githubBody, githubSecret, post, PROVIDERS, twilioForm, twilioParams, twilioToken, until, whpk, type Reply } from "../helpers/provider-requests.js";
import { Receiver, type Received } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Requests signed by the providers' own packages (stripe, @octokit/webhooks-methods, twilio,
 * standardwebhooks) or, for Shopify and Slack, by their documented algorithms, posted to
 * `/in/{id}` of a real server: the valid ones are answered 2xx and forwarded byte for byte, the
 * forged ones are answered 401 E_SIGNATURE_INVALID, never forwarded, recorded and counted.
 */

function metric(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

const REJECTED = '{outcome="rejected",code="E_SIGNATURE_INVALID"}';
const ACCEPTED = '{outcome="accepted",code=""}';

async function counters(t: TestServer): Promise<{ rejected: number; accepted: number }> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return { rejected: metric(text, "hookwarden_ingress_requests_total", REJECTED), accepted: metric(text, "hookwarden_ingress_requests_total", ACCEPTED) };
}

/** A bucket with one URL output on the receiver (path `/{name}`) and one input; returns the input as the API shows it. */
async function makeInput(t: TestServer, receiver: Receiver, name: string, verification: Record<string, unknown>, auth?: Record<string, unknown>) {
  const bucket = await t.api("POST", "/api/v1/bucket", { name: `verify-${name}-${randomUUID().slice(0, 8)}`, ...(auth ? { auth } : {}) });
  expect(bucket.status, bucket.text).toBe(201);
  const output = await t.api("POST", `/api/v1/bucket/${bucket.body.id}/output`, { url: `${receiver.url}/${name}` });
  expect(output.status, output.text).toBe(201);
  const input = await t.api("POST", `/api/v1/bucket/${bucket.body.id}/input`, { name, verification });
  expect(input.status, input.text).toBe(201);
  expect(input.body.verification).not.toHaveProperty("secret");
  return { bucketId: bucket.body.id as string, id: input.body.id as string, url: input.body.url as string };
}

const forwardedTo = (receiver: Receiver, name: string): Received[] => receiver.received.filter((r) => r.url.split("?")[0] === `/${name}`);

async function rejectionRows(t: TestServer, inputId: string) {
  return t.hw.ctx.store.db.selectFrom("inbound_rejections").selectAll().where("input_id", "=", inputId).orderBy("at").execute();
}

async function storedCount(t: TestServer, inputId: string): Promise<number> {
  const rows = await t.hw.ctx.store.db.selectFrom("inbound_requests").select("id").where("input_id", "=", inputId).execute();
  return rows.length;
}

function expectSignatureRejected(r: Reply, what: string): void {
  expect(r.status, `${what}: ${r.text}`).toBe(401);
  expect(r.json?.code, what).toBe("E_SIGNATURE_INVALID");
}

for (const dialect of DIALECTS) {
  describe(`inbound signature verification, signed by the providers' own code (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    for (const p of PROVIDERS) {
      it(`${p.name}: a valid request is answered 2xx and forwarded byte for byte; forged ones are refused, recorded and counted`, async () => {
        const input = await makeInput(t, receiver, p.name, p.verification);
        const before = await counters(t);
        const started = Date.now();

        const marker = randomUUID();
        const valid = await p.valid(input.url, marker);
        const ok = await post(input.url + (valid.query ?? ""), { headers: valid.headers, body: valid.body });
        expect(ok.status, ok.text).toBe(200);
        expect(ok.text).toBe("");

        const markers: string[] = [];
        const failures = await p.failures(input.url, (what) => {
          const m = `${what}-${randomUUID()}`;
          markers.push(m);
          return m;
        });
        for (const [what, f] of Object.entries(failures)) {
          expectSignatureRejected(await post(input.url + (f.query ?? ""), { headers: f.headers, body: f.body }), `${p.name} with ${what}`);
        }
        const n = Object.keys(failures).length;

        const [delivered] = await until(`${p.name} forwarded`, () => (forwardedTo(receiver, p.name).length > 0 ? forwardedTo(receiver, p.name) : undefined));
        await t.hw.worker.runUntilIdle();
        expect(forwardedTo(receiver, p.name)).toHaveLength(1);
        expect(delivered!.method).toBe("POST");
        expect(delivered!.body).toBe(valid.body);
        expect(Buffer.byteLength(delivered!.body)).toBe(Buffer.byteLength(valid.body));
        expect(delivered!.url).toBe(`/${p.name}${valid.query ?? ""}`);
        expect(await storedCount(t, input.id)).toBe(1);

        const rows = await until(`${n} rejection rows`, async () => {
          const r = await rejectionRows(t, input.id);
          return r.length >= n ? r : undefined;
        });
        expect(rows).toHaveLength(n);
        for (const row of rows) {
          expect(row).toMatchObject({ input_id: input.id, bucket_id: input.bucketId, status_code: 401 });
          expect(row.reason).toMatch(/^E_SIGNATURE_INVALID: /);
          expect(Number(row.at)).toBeGreaterThanOrEqual(started);
          expect(Number(row.at)).toBeLessThanOrEqual(Date.now());
        }
        const recorded = JSON.stringify(rows);
        for (const m of markers) expect(recorded).not.toContain(m);
        expect(recorded).not.toContain(marker);

        const after = await counters(t);
        expect(after.rejected - before.rejected).toBe(n);
        expect(after.accepted - before.accepted).toBe(1);
      });
    }

    it("ten refused requests in a row on one input produce one warning, without the body or the secret", async () => {
      const input = await makeInput(t, receiver, "noisy", { type: "github", secret: githubSecret });
      const marker = randomUUID();
      for (let i = 0; i < 10; i++) {
        const body = githubBody(`${marker}-${i}`);
        expectSignatureRejected(await post(input.url, { headers: await github(body, "a-leaked-old-secret"), body }), `attempt ${i + 1}`);
      }
      const warning = await until("the warning", () => {
        const lines = t.logs().split("\n").filter((l) => l.includes(input.id) && l.includes('"level":40'));
        return lines.length > 0 ? lines : undefined;
      });
      expect(warning).toHaveLength(1);
      const line = JSON.parse(warning[0]!) as Record<string, unknown>;
      // It fires on the tenth refusal, not before.
      expect(line).toMatchObject({ inputId: input.id, rejections: 10, lastCode: "E_SIGNATURE_INVALID" });
      expect(t.logs()).not.toContain(marker);
      expect(t.logs()).not.toContain(githubSecret);
      expect(t.logs()).not.toContain("a-leaked-old-secret");
    });

    it("refuses at creation a whpk_ key that is not a 32-byte ed25519 public key", async () => {
      const bucket = await t.api("POST", "/api/v1/bucket", { name: `verify-whpk-${randomUUID().slice(0, 8)}` });
      const short = `whpk_${Buffer.alloc(16, 7).toString("base64")}`;
      const bad = await t.api("POST", `/api/v1/bucket/${bucket.body.id}/input`, { name: "short key", verification: { type: "standard-webhooks", secret: short } });
      expect(bad.status, bad.text).toBe(422);
      expect(bad.body.code).toBe("E_SECRET_FORMAT");
      expect(bad.text).not.toContain(short);
      const good = await t.api("POST", `/api/v1/bucket/${bucket.body.id}/input`, { name: "real key", verification: { type: "standard-webhooks", secret: whpk } });
      expect(good.status, good.text).toBe(201);
    });

    describe("twilio: the URL Hookwarden rebuilds", () => {
      it("comes from the Host header when no public URL is configured", async () => {
        const input = await makeInput(t, receiver, "twilio-host", { type: "twilio", secret: twilioToken });
        const path = new URL(input.url).pathname;
        const signed = twilioForm(`http://hooks.example.test${path}`, twilioParams(randomUUID()));
        const r = await post(`${t.url}${path}`, { headers: { ...signed.headers, host: "hooks.example.test" }, body: signed.body });
        expect(r.status, r.text).toBe(200);
        // The same signature does not hold for the Host the request did not name.
        expectSignatureRejected(await post(`${t.url}${path}`, { headers: signed.headers, body: signed.body }), "host mismatch");
      });

      it("ignores X-Forwarded-Proto from a peer that is not a trusted proxy", async () => {
        const input = await makeInput(t, receiver, "twilio-proto", { type: "twilio", secret: twilioToken });
        const httpsUrl = input.url.replace(/^http:/, "https:");
        const signed = twilioForm(httpsUrl, twilioParams(randomUUID()));
        expectSignatureRejected(await post(input.url, { headers: signed.headers, body: signed.body }), "https signature over http");
        expectSignatureRejected(await post(input.url, { headers: { ...signed.headers, "x-forwarded-proto": "https" }, body: signed.body }), "untrusted X-Forwarded-Proto");
      });

      it("refuses, rather than fails on, a Host header that makes no URL", async () => {
        const input = await makeInput(t, receiver, "twilio-badhost", { type: "twilio", secret: twilioToken });
        const signed = twilioForm(input.url, twilioParams(randomUUID()));
        const r = await post(input.url, { headers: { ...signed.headers, host: "exa mple" }, body: signed.body });
        expectSignatureRejected(r, "unparseable host");
      });
    });
  });

  describe(`twilio behind a trusted proxy (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, { trustedProxies: ["127.0.0.1/32"] });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("rebuilds https://{Host}/... from X-Forwarded-Proto sent by the proxy", async () => {
      const input = await makeInput(t, receiver, "twilio-proxied", { type: "twilio", secret: twilioToken });
      const path = new URL(input.url).pathname;
      const signed = twilioForm(`https://hooks.example.test${path}`, twilioParams(randomUUID()));
      const headers = { ...signed.headers, host: "hooks.example.test", "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9" };
      const r = await post(`${t.url}${path}`, { headers, body: signed.body });
      expect(r.status, r.text).toBe(200);
      await until("forward", () => (forwardedTo(receiver, "twilio-proxied").length === 1 ? true : undefined));
      expect(forwardedTo(receiver, "twilio-proxied")[0]!.body).toBe(signed.body);
    });
  });

  describe(`twilio with a configured public URL (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    const PUBLIC = "https://hooks.example.test";

    beforeAll(async () => {
      t = await startTestServer(dialect, { publicUrl: PUBLIC });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("verifies against the URL the API reports, with or without :443, whatever the Host header says", async () => {
      const input = await makeInput(t, receiver, "twilio-public", { type: "twilio", secret: twilioToken });
      expect(input.url).toBe(`${PUBLIC}/in/${input.id}`);
      const direct = `${t.url}/in/${input.id}`;
      const plain = twilioForm(input.url, twilioParams(randomUUID()));
      expect((await post(direct, plain)).status).toBe(200);
      const withPort = twilioForm(`https://hooks.example.test:443/in/${input.id}`, twilioParams(randomUUID()));
      expect((await post(direct, withPort)).status).toBe(200);
      // Signed for the address the request physically reached: the configured public URL wins.
      const hostDerived = twilioForm(direct, twilioParams(randomUUID()));
      expectSignatureRejected(await post(direct, hostDerived), "host-derived URL");
      const otherPort = twilioForm(`https://hooks.example.test:8443/in/${input.id}`, twilioParams(randomUUID()));
      expectSignatureRejected(await post(direct, otherPort), "another port");
      await until("two forwards", () => (forwardedTo(receiver, "twilio-public").length === 2 ? true : undefined));
      expect(forwardedTo(receiver, "twilio-public").map((r) => r.body).sort()).toEqual([plain.body, withPort.body].sort());
    });

    it("verifies a basic-auth bucket's Twilio requests, signed over https://user:pass@host/...", async () => {
      const input = await makeInput(t, receiver, "twilio-basic", { type: "twilio", secret: twilioToken }, { type: "basic", username: "twilio", password: "correct-horse-battery" });
      const configured = input.url.replace("https://", "https://twilio:correct-horse-battery@");
      const signed = twilioForm(configured, twilioParams(randomUUID()));
      const authorization = `Basic ${Buffer.from("twilio:correct-horse-battery").toString("base64")}`;
      // Twilio first calls without credentials and is challenged, then retries with them.
      const first = await post(`${t.url}/in/${input.id}`, signed);
      expect(first.status).toBe(401);
      expect(first.json?.code).toBe("E_UNAUTHORIZED");
      const r = await post(`${t.url}/in/${input.id}`, { headers: { ...signed.headers, authorization }, body: signed.body });
      expect(r.status, r.text).toBe(200);
      await until("forward", () => (forwardedTo(receiver, "twilio-basic").length === 1 ? true : undefined));
      expect(forwardedTo(receiver, "twilio-basic")[0]!.body).toBe(signed.body);
    });
  });

  describe(`slack's published example through the gateway, at the time it was signed (${dialect})`, () => {
    // docs.slack.dev/authentication/verifying-requests-from-slack, as kept in Slack's own
    // python-slack-sdk tests. The server's clock is set a minute after the example's timestamp.
    const DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TS = 1531420618;
    const DOC_BODY =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let t: TestServer;
    let receiver: Receiver;

    beforeAll(async () => {
      t = await startTestServer(dialect, {}, { clock: new FakeClock(DOC_TS * 1000 + 60_000) });
      receiver = await new Receiver().start();
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("accepts the form-encoded example byte for byte and refuses it with one byte changed", async () => {
      const input = await makeInput(t, receiver, "slack-doc", { type: "slack", secret: DOC_SECRET });
      const headers = { "x-slack-signature": DOC_SIG, "x-slack-request-timestamp": String(DOC_TS), "content-type": "application/x-www-form-urlencoded" };
      expectSignatureRejected(await post(input.url, { headers, body: DOC_BODY.replace("foobar", "foobas") }), "changed byte");
      const r = await post(input.url, { headers, body: DOC_BODY });
      expect(r.status, r.text).toBe(200);
      await until("forward", () => (forwardedTo(receiver, "slack-doc").length === 1 ? true : undefined));
      expect(forwardedTo(receiver, "slack-doc")[0]!.body).toBe(DOC_BODY);
    });
  });
}
