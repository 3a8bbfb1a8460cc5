import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/clock/index.js";
import { postWebhook, until } from "../helpers/agents.js";
import { DIALECTS } from "../helpers/dialects.js";
import { createApp, createEndpoint, publish } from "../helpers/delivery.js";
import { listRequests, setup } from "../helpers/ingress.js";
import { Receiver } from "../helpers/receiver.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Jobs queued by the API outside publishing (resend, recover, send-example, replay, incident
 * resume) are delivered as soon as they are committed. The servers poll once an hour, so a job
 * whose wake-up was missed would wait for that poll and these tests would time out; none of them
 * calls `runUntilIdle`, which would wake the worker itself.
 */
const POLL = "1h";
const CONFIG = { pollInterval: POLL, retrySchedule: [] as number[] };

/** Every case, run against `api` (where the calls are made) and delivered by whichever node works. */
function cases(nodes: () => { api: TestServer }, receiver: () => Receiver) {
  const at = (path: string) => receiver().received.filter((r) => r.url === path);
  const arrived = (path: string, n: number) => until(`${n} deliveries to ${path}`, () => at(path).length >= n);

  it("a resent message is delivered again at once", async () => {
    const t = nodes().api;
    const app = await createApp(t, "resend");
    const ep = await createEndpoint(t, app, { url: `${receiver().url}/resend` });
    const msg = await publish(t, app, { payload: { n: 1 } });
    await arrived("/resend", 1);
    const res = await t.api("POST", `/api/v1/app/${app}/msg/${msg.id}/endpoint/${ep.id}/resend`);
    expect(res.status, res.text).toBe(202);
    await arrived("/resend", 2);
    expect(at("/resend").map((r) => r.headers["webhook-id"])).toEqual([msg.id, msg.id]);
  });

  it("recover delivers what failed for good at once", async () => {
    const t = nodes().api;
    let failing = true;
    receiver().respond = (r) => (r.url === "/recover" && failing ? { status: 500, body: "down" } : undefined);
    const app = await createApp(t, "recover");
    const ep = await createEndpoint(t, app, { url: `${receiver().url}/recover` });
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const msg = await publish(t, app, { payload: { n: 1 } });
    await arrived("/recover", 1);
    await until("the failure is recorded", async () => (await t.api("GET", `/api/v1/app/${app}/endpoint/${ep.id}/stats`)).body.fail === 1);
    failing = false;
    const res = await t.api("POST", `/api/v1/app/${app}/endpoint/${ep.id}/recover`, { since });
    expect([res.status, res.body.data]).toEqual([202, { messagesSent: 1 }]);
    await arrived("/recover", 2);
    expect(at("/recover")[1]!.headers["webhook-id"]).toBe(msg.id);
  });

  it("send-example is delivered at once", async () => {
    const t = nodes().api;
    const app = await createApp(t, "example");
    const ep = await createEndpoint(t, app, { url: `${receiver().url}/example` });
    const res = await t.api("POST", `/api/v1/app/${app}/endpoint/${ep.id}/send-example`, { eventType: "svix.ping" });
    expect(res.status, res.text).toBe(202);
    await arrived("/example", 1);
    expect(JSON.parse(at("/example")[0]!.body)).toEqual({ success: true });
  });

  it("a replayed inbound request is forwarded again at once", async () => {
    const t = nodes().api;
    const { bucket, input } = await setup(t, { outputs: [`${receiver().url}/replay`] });
    expect((await postWebhook(input.url, JSON.stringify({ n: 1 }))).status).toBe(200);
    await arrived("/replay", 1);
    const [request] = await listRequests(t, bucket.id);
    const res = await t.api("POST", `/api/v1/bucket/${bucket.id}/request/${request.id}/replay`);
    expect([res.status, res.body]).toEqual([202, { queued: 1 }]);
    await arrived("/replay", 2);
    expect(at("/replay").map((r) => r.body)).toEqual(['{"n":1}', '{"n":1}']);
  });

  it("resuming a paused application delivers what it held at once", async () => {
    const t = nodes().api;
    const app = await createApp(t, "paused");
    await createEndpoint(t, app, { url: `${receiver().url}/paused` });
    expect((await t.api("POST", "/api/v1/incident/pause", { app })).status).toBe(200);
    await publish(t, app, { payload: { n: 1 } });
    // A marker published after it, to an application not paused: once it has arrived, the paused
    // job has been passed over by a claim.
    const other = await createApp(t, "not-paused");
    await createEndpoint(t, other, { url: `${receiver().url}/marker` });
    await publish(t, other, { payload: { marker: true } });
    await arrived("/marker", 1);
    expect(at("/paused")).toHaveLength(0);
    expect((await t.api("POST", "/api/v1/incident/resume", { app })).body.resumed).toBe(true);
    await arrived("/paused", 1);
  });
}

for (const dialect of DIALECTS) {
  describe(`jobs queued by the API are delivered at once, not at the next poll (${dialect})`, () => {
    let t: TestServer;
    let receiver: Receiver;
    beforeAll(async () => {
      t = await startTestServer(dialect, CONFIG, { clock: new FakeClock(Date.now()) });
      receiver = await new Receiver().start();
    }, 60_000);
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });
    cases(() => ({ api: t }), () => receiver);
  });
}

/** The same calls made on an API node: only another node's worker (woken by NOTIFY) delivers. */
describe.runIf(DIALECTS.includes("postgres"))("jobs queued on an API node are delivered at once by a worker node (postgres)", () => {
  let api: TestServer;
  let worker: TestServer;
  let receiver: Receiver;
  beforeAll(async () => {
    const masterKey = randomBytes(32).toString("base64");
    const clock = new FakeClock(Date.now());
    api = await startTestServer("postgres", { ...CONFIG, masterKey, role: "api" }, { clock });
    worker = await startTestServer("postgres", { ...CONFIG, masterKey, role: "worker", databaseSchema: api.schema!, adminToken: api.token }, { clock });
    receiver = await new Receiver().start();
  }, 60_000);
  afterAll(async () => {
    // The worker first, without dropping the schema the API node still uses.
    await worker?.hw.stop();
    if (worker) rmSync(worker.dataDir, { recursive: true, force: true });
    await api?.stop();
    await receiver?.stop();
  });
  cases(() => ({ api }), () => receiver);
});
