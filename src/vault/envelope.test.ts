import { createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HookwardenError } from "../errors/index.js";
import { Keyring, keyId } from "./envelope.js";

const AAD = "endpoints:ep_1:secret";

function fails(fn: () => unknown): HookwardenError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HookwardenError);
    expect((err as HookwardenError).code).toBe("E_MASTER_KEY");
    return err as HookwardenError;
  }
  throw new Error("expected the call to throw");
}

/** Flips one bit of the decoded nonce|ciphertext|tag at `index` (negative counts from the end). */
function flipByte(sealed: string, index: number): string {
  const [prefix, kid, body] = sealed.split(":") as [string, string, string];
  const raw = Buffer.from(body, "base64");
  const at = index < 0 ? raw.length + index : index;
  raw[at] = raw[at]! ^ 0x01;
  return `${prefix}:${kid}:${raw.toString("base64")}`;
}

describe("Keyring", () => {
  const master = randomBytes(32);

  it("round-trips strings, buffers, empty and multi-byte text", () => {
    const ring = new Keyring(master);
    expect(ring.openString(ring.seal("whsec_abc", AAD), AAD)).toBe("whsec_abc");
    expect(ring.openString(ring.seal("", AAD), AAD)).toBe("");
    expect(ring.openString(ring.seal("clé ✓ 秘密", AAD), AAD)).toBe("clé ✓ 秘密");
    const bytes = randomBytes(100);
    expect(ring.open(ring.seal(bytes, AAD), AAD).equals(bytes)).toBe(true);
    // Parts seal as their concatenation, none of them empty or all of them.
    const parts = [Buffer.from("head\n"), Buffer.alloc(0), randomBytes(70_000)];
    expect(ring.open(ring.seal(parts, AAD), AAD).equals(Buffer.concat(parts))).toBe(true);
    expect(ring.open(ring.seal([], AAD), AAD).length).toBe(0);
  });

  it("is standard AES-256-GCM: node:crypto opens the stored bytes with the master key", () => {
    const ring = new Keyring(master);
    const sealed = ring.seal("interoperable", AAD);
    const [prefix, kid, body] = sealed.split(":") as [string, string, string];
    expect(prefix).toBe("hw1");
    expect(kid).toBe(keyId(master));
    const raw = Buffer.from(body, "base64");
    expect(raw.length).toBe(12 + "interoperable".length + 16);
    const d = createDecipheriv("aes-256-gcm", master, raw.subarray(0, 12));
    d.setAAD(Buffer.from(AAD));
    d.setAuthTag(raw.subarray(raw.length - 16));
    expect(Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString()).toBe("interoperable");
  });

  it("never writes the plaintext and uses a fresh nonce for every write", () => {
    const ring = new Keyring(master);
    const a = ring.seal("whsec_same_value", AAD);
    const b = ring.seal("whsec_same_value", AAD);
    expect(a).not.toBe(b);
    expect(Buffer.from(a.split(":")[2]!, "base64").subarray(0, 12).equals(Buffer.from(b.split(":")[2]!, "base64").subarray(0, 12))).toBe(false);
    expect(a).not.toContain("whsec_same_value");
    expect(Buffer.from(a.split(":")[2]!, "base64").toString("latin1")).not.toContain("whsec_same_value");
  });

  it.each([
    ["the nonce", 0],
    ["the ciphertext", 12],
    ["the tag", -1],
  ])("refuses a value whose %s was changed", (_what, index) => {
    const ring = new Keyring(master);
    const sealed = ring.seal("tamper me", AAD);
    const err = fails(() => ring.open(flipByte(sealed, index), AAD));
    expect(err.message).toMatch(/authentication/);
    expect(err.message).not.toContain("tamper me");
  });

  it("refuses a value cut short", () => {
    const ring = new Keyring(master);
    const sealed = ring.seal("", AAD);
    fails(() => ring.open(sealed.slice(0, sealed.length - 8), AAD));
    fails(() => ring.open(`hw1:${ring.currentKid}:AAAA`, AAD));
  });

  it("binds a value to its row: a ciphertext copied to another row's AAD does not open", () => {
    const ring = new Keyring(master);
    const forEp1 = ring.seal("whsec_endpoint_one", "endpoints:ep_1:secret");
    fails(() => ring.open(forEp1, "endpoints:ep_2:secret"));
    fails(() => ring.open(forEp1, "endpoints:ep_1:headers"));
    fails(() => ring.open(forEp1, ""));
    expect(ring.openString(forEp1, "endpoints:ep_1:secret")).toBe("whsec_endpoint_one");
  });

  it("refuses a value sealed under another key, whichever key id it claims", () => {
    const ours = new Keyring(master);
    const theirs = new Keyring(randomBytes(32));
    const sealed = theirs.seal("other key", AAD);
    expect(fails(() => ours.open(sealed, AAD)).message).toContain(theirs.currentKid);
    const relabelled = sealed.replace(`:${theirs.currentKid}:`, `:${ours.currentKid}:`);
    expect(fails(() => ours.open(relabelled, AAD)).message).toMatch(/authentication/);
  });

  it("refuses text that is not one of its ciphertexts", () => {
    const ring = new Keyring(master);
    for (const junk of ["", "whsec_plaintext", "hw1", "hw1:abc", "hw2:" + ring.seal("x", AAD).slice(4)]) {
      fails(() => ring.open(junk, AAD));
    }
  });

  it("opens values sealed under a previous key and seals new values under the current one", () => {
    const oldKey = randomBytes(32);
    const before = new Keyring(oldKey);
    const sealedBefore = before.seal("sealed before rotation", AAD);

    const after = new Keyring(randomBytes(32), [oldKey]);
    expect(after.openString(sealedBefore, AAD)).toBe("sealed before rotation");
    const resealed = after.seal(after.openString(sealedBefore, AAD), AAD);
    expect(resealed.split(":")[1]).toBe(after.currentKid);
    expect(after.currentKid).not.toBe(before.currentKid);
    // The old node cannot read what the new key sealed.
    fails(() => before.open(resealed, AAD));
  });

  it("isStale is true exactly for values sealed under a key other than the current one", () => {
    const oldKey = randomBytes(32);
    const ring = new Keyring(randomBytes(32), [oldKey]);
    expect(ring.isStale(ring.seal("x", AAD))).toBe(false);
    expect(ring.isStale(new Keyring(oldKey).seal("x", AAD))).toBe(true);
  });

  it("gives the same key id to the same key and different ids to different keys", () => {
    const copy = Buffer.from(master);
    expect(new Keyring(copy).currentKid).toBe(new Keyring(master).currentKid);
    expect(keyId(master)).toMatch(/^[0-9a-f]{12}$/);
    expect(keyId(randomBytes(32))).not.toBe(keyId(master));
    // The id is not the key (nor a prefix of its hex).
    expect(master.toString("hex").startsWith(keyId(master))).toBe(false);
  });

  it("refuses master keys that are not 32 bytes, current or previous", () => {
    for (const n of [0, 16, 31, 33, 64]) {
      fails(() => new Keyring(randomBytes(n)));
      fails(() => new Keyring(master, [randomBytes(n)]));
    }
  });
});
