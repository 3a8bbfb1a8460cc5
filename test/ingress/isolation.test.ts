import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../helpers/dialects.js";
import { createBucket, createInput, createOutput, listRequests, RawReceiver, send, setup } from "../helpers/ingress.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

for (const dialect of DIALECTS) {
  describe(`organisations cannot see or touch each other's inbound resources (${dialect})`, () => {
    let t: TestServer;
    let receiver: RawReceiver;
    let otherToken: string;
    /** Organisation A's resources, created with the admin token. */
    let a: { bucket: any; input: any; outputs: any[]; requestId: string };

    const asOther = (method: string, path: string, body?: unknown) => t.api(method, path, body, { authorization: `Bearer ${otherToken}` });

    beforeAll(async () => {
      t = await startTestServer(dialect);
      receiver = await new RawReceiver().start();
      otherToken = await t.newOrgToken("org-b");
      const s = await setup(t, { bucket: { name: "shared-name", auth: { type: "token", token: "org-a-bucket-token-0123456789" } }, outputs: [`${receiver.url}/a`] });
      expect((await send(t.url, `/in/${s.input.id}`, { body: "a's request", headers: { authorization: "Bearer org-a-bucket-token-0123456789" } })).status).toBe(200);
      await t.hw.worker.runUntilIdle();
      a = { ...s, requestId: (await listRequests(t, s.bucket.id))[0].id };
    });
    afterAll(async () => {
      await t?.stop();
      await receiver?.stop();
    });

    it("answers 404 to every read, change and delete of another organisation's bucket, input, output and request", async () => {
      const b = `/api/v1/bucket/${a.bucket.id}`;
      const calls: [string, string, unknown?][] = [
        ["GET", b],
        ["GET", "/api/v1/bucket/shared-name"],
        ["PATCH", b, { name: "taken-over", auth: { type: "none" } }],
        ["GET", `${b}/input`],
        ["POST", `${b}/input`, { name: "planted" }],
        ["GET", `${b}/input/${a.input.id}`],
        ["PATCH", `${b}/input/${a.input.id}`, { response: { mode: "static", status: 500 } }],
        ["GET", `${b}/output`],
        ["POST", `${b}/output`, { url: `${receiver.url}/stolen` }],
        ["GET", `${b}/output/${a.outputs[0].id}`],
        ["PATCH", `${b}/output/${a.outputs[0].id}`, { url: `${receiver.url}/stolen` }],
        ["GET", `${b}/request`],
        ["GET", `${b}/request/${a.requestId}`],
        ["POST", `${b}/request/${a.requestId}/replay`],
        ["GET", `/api/v1/app/${a.bucket.id}/attempt/msg/${a.requestId}`],
        ["DELETE", `${b}/output/${a.outputs[0].id}`],
        ["DELETE", `${b}/input/${a.input.id}`],
        ["DELETE", b],
      ];
      for (const [method, path, body] of calls) {
        const res = await asOther(method, path, body);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.text, `${method} ${path}`).not.toContain("a's request");
      }
      expect((await asOther("GET", "/api/v1/bucket")).body.data).toEqual([]);

      // Nothing changed for organisation A.
      const bucket = await t.api("GET", `/api/v1/bucket/${a.bucket.id}`);
      expect(bucket.body).toMatchObject({ name: "shared-name", auth: { type: "token" } });
      expect((await t.api("GET", `${b}/input`)).body.data.map((i: any) => [i.id, i.response])).toEqual([[a.input.id, a.input.response]]);
      expect((await t.api("GET", `${b}/output`)).body.data.map((o: any) => [o.id, o.url])).toEqual([[a.outputs[0].id, `${receiver.url}/a`]]);
      expect((await t.api("GET", `${b}/request/${a.requestId}`)).body.request.body).toBe("a's request");
      await t.hw.worker.runUntilIdle();
      expect(receiver.at("/a")).toHaveLength(1);
      expect(receiver.at("/stolen")).toHaveLength(0);
    });

    it("does not reach another organisation's resources through its own bucket, and may reuse a bucket name", async () => {
      const own = await asOther("POST", "/api/v1/bucket", { name: "shared-name" });
      expect(own.status, own.text).toBe(201);
      const ob = `/api/v1/bucket/${own.body.id}`;
      for (const [method, path] of [
        ["GET", `${ob}/input/${a.input.id}`],
        ["DELETE", `${ob}/input/${a.input.id}`],
        ["GET", `${ob}/output/${a.outputs[0].id}`],
        ["DELETE", `${ob}/output/${a.outputs[0].id}`],
        ["GET", `${ob}/request/${a.requestId}`],
        ["POST", `${ob}/request/${a.requestId}/replay`],
      ] as const) {
        expect((await asOther(method, path)).status, `${method} ${path}`).toBe(404);
      }
      expect((await asOther("GET", "/api/v1/bucket/shared-name")).body.id).toBe(own.body.id);
      expect((await t.api("GET", "/api/v1/bucket/shared-name")).body.id).toBe(a.bucket.id);
      expect((await t.api("GET", `/api/v1/bucket/${a.bucket.id}/input/${a.input.id}`)).status).toBe(200);
    });

    it("keeps buckets of one organisation apart too", async () => {
      const first = await createBucket(t, { name: "first" });
      const second = await createBucket(t, { name: "second" });
      const input = await createInput(t, first.id);
      const output = await createOutput(t, first.id, { url: `${receiver.url}/first` });
      for (const path of [`/api/v1/bucket/${second.id}/input/${input.id}`, `/api/v1/bucket/${second.id}/output/${output.id}`, `/api/v1/bucket/${second.id}/request/${a.requestId}`]) {
        expect((await t.api("GET", path)).status, path).toBe(404);
      }
      expect((await t.api("DELETE", `/api/v1/bucket/${second.id}/input/${input.id}`)).status).toBe(404);
      expect((await t.api("GET", `/api/v1/bucket/${first.id}/input/${input.id}`)).status).toBe(200);
    });
  });
}
