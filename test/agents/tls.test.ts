import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentServer, transportConfig, TRANSPORTS, agentBucket, createAgentToken, spawnAgent, until, type AgentProcess, type Api } from "../helpers/agents.js";
import { selfSignedCert } from "../helpers/delivery.js";
import { DIALECTS } from "../helpers/dialects.js";
import { runCli } from "../helpers/integrations.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * A gateway started with --tls-cert/--tls-key serves its API, its public inputs and the agent
 * WebSocket over TLS; an agent reaches it at https:// (wss://) and verifies its certificate.
 */
for (const transport of TRANSPORTS) for (const dialect of DIALECTS) {
  describe(`agents over wss:// to a gateway with TLS (${dialect}, ${transport})`, () => {
    const tls = selfSignedCert();
    let dir: string;
    let certFile: string;
    let t: TestServer;
    let svc: Receiver;
    let api: Api;
    let dispatcher: Agent;
    const agents: AgentProcess[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "hookwarden-tls-"));
      certFile = join(dir, "cert.pem");
      const keyFile = join(dir, "key.pem");
      writeFileSync(certFile, tls.cert);
      writeFileSync(keyFile, tls.key, { mode: 0o600 });
      t = await startTestServer(dialect, { ...transportConfig(transport), tlsCert: certFile, tlsKey: keyFile });
      svc = await new Receiver().start();
      // The test's own client trusts the gateway's certificate, as the agent is told to below.
      dispatcher = new Agent({ connect: { ca: tls.cert } });
      api = async (method, path, body) => {
        const res = await fetch(t.url + path, {
          method,
          dispatcher,
          headers: { authorization: `Bearer ${t.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
      };
    });
    afterAll(async () => {
      await Promise.all(agents.map((a) => a.stop()));
      await svc?.stop();
      await t?.stop();
      await dispatcher?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("serves HTTPS only, and an agent given the CA relays over wss:// to the internal service", async () => {
      expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      // The gRPC port uses the same certificate: agents reach it at grpcs://.
      if (transport === "grpc") expect(agentServer(t.hw, transport)).toMatch(/^grpcs:\/\/127\.0\.0\.1:\d+$/);
      // Plain HTTP to the TLS port gets no API answer.
      await expect(fetch(t.url.replace("https:", "http:") + "/health")).rejects.toThrow();

      const { input } = await agentBucket(api, "secure");
      expect(input.url).toMatch(/^https:\/\//);
      const token = await createAgentToken(api, { name: "dc-tls", buckets: ["secure"] });
      const agent = spawnAgent({ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "secure", forwardTo: `${svc.url}/hook`, args: ["--ca-file", certFile] });
      agents.push(agent);
      await agent.waitConnected(1, 90_000);

      const body = JSON.stringify({ over: "wss", n: 1 });
      const res = await fetch(input.url, { method: "POST", dispatcher, headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(200);
      const got = await until("the webhook at the internal service", () => svc.received.find((r) => r.body === body));
      expect(got.url).toBe("/hook");
    }, 120_000);

    it("an agent that does not trust the gateway's certificate never connects, and logs why", async () => {
      const token = await createAgentToken(api, { name: "dc-untrusting", buckets: ["secure"] });
      const before = svc.received.length;
      const agent = spawnAgent({ server: agentServer(t.hw, transport), key: token.key, secret: token.secret, bucket: "secure", forwardTo: `${svc.url}/never` });
      agents.push(agent);
      await until("the agent to report the certificate", () => /self[- ]signed|certificate/i.test(agent.output()), 150_000);
      expect(agent.connections()).toBe(0);
      expect(svc.received.length).toBe(before);
      // The secret never appears in what it logged.
      expect(agent.output()).not.toContain(token.secret);
    }, 180_000);
  });
}

describe("hookwarden serve with an unreadable TLS file", () => {
  it("exits with one line naming the file, before opening anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hookwarden-tls-bad-"));
    try {
      const r = await runCli(["serve", "--port", "0", "--data-dir", join(dir, "data"), "--tls-cert", join(dir, "missing.pem"), "--tls-key", join(dir, "missing-key.pem")], {});
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`cannot read the TLS certificate ${join(dir, "missing.pem")}: ENOENT`);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
