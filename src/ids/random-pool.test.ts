import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Keyring } from "../vault/envelope.js";
import { RandomPool } from "./random-pool.js";

describe("RandomPool", () => {
  it("hands every byte out once: no two takes overlap, across refills", () => {
    const pool = new RandomPool(64);
    const seen = new Set<string>();
    // 12-byte takes from a 64-byte pool cross the refill every sixth call.
    for (let i = 0; i < 2_000; i++) {
      const nonce = pool.take(12);
      expect(nonce.length).toBe(12);
      seen.add(nonce.toString("hex"));
    }
    expect(seen.size).toBe(2_000);
  });

  it("gives the caller a copy the pool does not touch again", () => {
    const pool = new RandomPool(32);
    const first = pool.take(16);
    const kept = Buffer.from(first);
    for (let i = 0; i < 10; i++) pool.take(16);
    expect(first.equals(kept)).toBe(true);
  });

  it("serves a request larger than the pool straight from the CSPRNG", () => {
    const pool = new RandomPool(16);
    const big = pool.take(100);
    expect(big.length).toBe(100);
    expect(big.equals(Buffer.alloc(100))).toBe(false);
  });

  it("gives fractions in [0, 1) in steps of 1/256, spread over the range", () => {
    const pool = new RandomPool(128);
    const values = Array.from({ length: 5_000 }, () => pool.fraction());
    expect(values.every((v) => v >= 0 && v < 1 && Number.isInteger(v * 256))).toBe(true);
    // 5,000 draws over 256 values: each quarter of the range gets roughly its share.
    for (let q = 0; q < 4; q++) {
      const n = values.filter((v) => v >= q / 4 && v < (q + 1) / 4).length;
      expect(n).toBeGreaterThan(1_000);
      expect(n).toBeLessThan(1_500);
    }
  });
});

describe("Keyring nonces", () => {
  it("seals the same plaintext differently every time, and each opens", () => {
    const key = Buffer.alloc(32, 7);
    const ring = new Keyring(key);
    const sealed = Array.from({ length: 1_000 }, () => ring.seal("same body", "row-1"));
    const nonces = new Set(sealed.map((s) => Buffer.from(s.split(":")[2]!, "base64").subarray(0, 12).toString("hex")));
    expect(nonces.size).toBe(1_000);
    for (const s of sealed.slice(0, 20)) expect(ring.openString(s, "row-1")).toBe("same body");
    // A nonce is the IV AES-GCM was given: re-encrypting with it reproduces the ciphertext.
    const raw = Buffer.from(sealed[0]!.split(":")[2]!, "base64");
    const c = createCipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    c.setAAD(Buffer.from("row-1"));
    expect(Buffer.concat([c.update("same body"), c.final()]).equals(raw.subarray(12, raw.length - 16))).toBe(true);
  });
});
