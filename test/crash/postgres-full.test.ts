import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgCluster, type PgCluster } from "../helpers/pg-cluster.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { mountTmpfs, type Tmpfs } from "../helpers/tmpfs.js";

/**
 * PostgreSQL on a full disk (a throwaway cluster whose data directory is a small tmpfs of this
 * test's own): a table that cannot grow fails with 53100 disk_full, which the API answers 507
 * E_STORAGE_FULL with Retry-After, not 500; readiness follows, and writes work again once space
 * is back, without a restart.
 */
describe("PostgreSQL on a full disk", () => {
  let fs: Tmpfs;
  let cluster: PgCluster;
  beforeAll(async () => {
    fs = mountTmpfs(160);
    cluster = await createPgCluster({ dataDir: fs.dir });
  }, 120_000);
  afterAll(() => {
    cluster?.destroy();
    fs?.unmount();
  });

  it("answers 507 E_STORAGE_FULL with Retry-After, fails /ready, and recovers when space returns", async () => {
    let t: TestServer | undefined;
    try {
      t = await startTestServer("postgres", { databaseUrl: cluster.url });
      const app = await t.api("POST", "/api/v1/app", { name: "pg-full" });
      expect(app.status).toBe(201);
      const publish = (n: number) => t!.api("POST", `/api/v1/app/${app.body.id}/msg`, { eventType: "a.b", payload: { n, pad: "p".repeat(60_000) } });
      expect((await publish(0)).status).toBe(202);
      const filler = fs.fill();
      let refused: Awaited<ReturnType<typeof publish>> | undefined;
      for (let n = 1; n < 300 && !refused; n++) {
        const res = await publish(n);
        if (res.status !== 202) refused = res;
      }
      expect(refused?.status, refused?.text).toBe(507);
      expect(refused!.body).toMatchObject({ code: "E_STORAGE_FULL", detail: expect.any(String) });
      const raw = await fetch(`${t.url}/api/v1/app/${app.body.id}/msg`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
        body: JSON.stringify({ eventType: "a.b", payload: { pad: "q".repeat(60_000) } }),
      });
      expect(raw.status).toBe(507);
      expect(raw.headers.get("retry-after")).toBe("5");
      expect((await t.api("GET", `/api/v1/app/${app.body.id}`)).status).toBe(200);
      const ready = await fetch(`${t.url}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ code: "E_STORAGE_FULL" });
      expect(t.logs().match(/storage full: 53100/g)?.length).toBe(1);

      rmSync(filler);
      expect((await publish(1_000)).status).toBe(202);
      expect((await fetch(`${t.url}/ready`)).status).toBe(200);
      expect(t.logs().match(/storage full: recovered/g)?.length).toBe(1);
    } finally {
      await t?.stop();
    }
  }, 180_000);
});
