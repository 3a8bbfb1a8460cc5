import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../../test/helpers/dialects.js";
import { insertApp, openTestStore, type TestStore } from "../../test/helpers/store.js";
import { Keyring } from "../vault/envelope.js";
import { createEndpoint } from "./index.js";
import { loadSigningKeys } from "./secrets.js";

for (const dialect of DIALECTS) {
  describe(`loadSigningKeys (${dialect})`, () => {
    let s: TestStore;
    let endpointId: string;
    const now = 1_700_000_000_000;
    const secret = `whsec_${randomBytes(24).toString("base64")}`;

    beforeAll(async () => {
      s = await openTestStore(dialect);
      const app = await insertApp(s.store.db);
      const { row } = await createEndpoint(s.ctx, app, { url: "https://example.com/hook", secret });
      endpointId = row.id;
    });
    afterAll(async () => {
      await s?.drop();
    });

    it("opens the same key every time, and a server holding another master key still cannot", async () => {
      const first = await loadSigningKeys(s.ctx, [endpointId], now);
      const again = await loadSigningKeys(s.ctx, [endpointId], now);
      expect(first.get(endpointId)).toHaveLength(1);
      expect(again.get(endpointId)![0]!.key).toEqual(Buffer.from(secret.slice("whsec_".length), "base64"));
      // Opened once under this keyring; another keyring must not be served from that.
      const other = { ...s.ctx, keyring: new Keyring(randomBytes(32)) };
      await expect(loadSigningKeys(other, [endpointId], now)).rejects.toThrow();
    });
  });
}
