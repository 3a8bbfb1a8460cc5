import { Console } from "node:console";
import { PassThrough } from "node:stream";
import { format, inspect } from "node:util";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { SecretValue } from "./secret-value.js";

const VALUE = "whsec_TOPSECRETvalue1234567890";
const FRAGMENT = "TOPSECRET";

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

describe("SecretValue", () => {
  const secret = new SecretValue(VALUE);

  it("gives the value only through reveal()", () => {
    expect(secret.reveal()).toBe(VALUE);
    expect(SecretValue.MASK).toBe("******");
  });

  it("prints ****** through String(), concatenation and template literals", () => {
    expect(String(secret)).toBe("******");
    expect(`${secret}`).toBe("******");
    expect("key=" + secret).toBe("key=******");
    expect([secret, secret].join(",")).toBe("******,******");
  });

  it("prints ****** through JSON.stringify, also when nested", () => {
    expect(JSON.stringify(secret)).toBe('"******"');
    const nested = JSON.stringify({ endpoint: { secrets: [secret], headers: new Map() } });
    expect(nested).toBe('{"endpoint":{"secrets":["******"],"headers":{}}}');
  });

  it("prints ****** through util.inspect, whatever the options", () => {
    expect(inspect(secret)).toBe("******");
    const deep = { a: { b: { c: { d: secret } } } };
    for (const opts of [{}, { showHidden: true }, { depth: Infinity }, { colors: true }, { getters: true }]) {
      expect(inspect(deep, opts)).not.toContain(FRAGMENT);
      expect(inspect(secret, opts)).toContain("******");
    }
  });

  it("does not expose the value as an own property, a key or through spreading", () => {
    expect(Object.keys(secret)).toEqual([]);
    expect(Object.getOwnPropertyNames(secret)).toEqual([]);
    expect(JSON.stringify({ ...secret })).toBe("{}");
    expect(Object.entries(secret)).toEqual([]);
  });

  it.each(["%s", "%o", "%O", "%j", "%i", "%d", "%f"])("prints no value through util.format(%s)", (spec) => {
    expect(format(spec, secret)).not.toContain(FRAGMENT);
    expect(format(spec, { secret })).not.toContain(FRAGMENT);
  });

  it("prints ****** through console.log/error/dir/table", () => {
    const out = capture();
    const c = new Console({ stdout: out.stream, stderr: out.stream, colorMode: false });
    c.log(secret);
    c.log("secret: %s", secret);
    c.log("object: %o", { secret });
    c.error({ nested: { secret } });
    c.dir({ secret }, { depth: 5 });
    c.table([{ secret }]);
    expect(out.text()).toContain("******");
    expect(out.text()).not.toContain(FRAGMENT);
  });

  it("prints ****** through a pino logger without any redaction configured", async () => {
    const out = capture();
    // No `redact`: the value must hide itself, whatever field name it sits under.
    const logger = pino({ level: "trace" }, out.stream);
    logger.info({ credential: secret }, "object field");
    logger.info({ endpoint: { auth: [secret] } }, "nested field");
    logger.info("interpolated %s", secret);
    logger.info("interpolated %o / %O / %j", secret, { secret }, secret);
    logger.child({ secret }).warn("child bindings");
    logger.error(new Error("failed", { cause: { secret } }));
    await new Promise((resolve) => setImmediate(resolve));
    const lines = out.text().trim().split("\n");
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines[0]!).credential).toBe("******");
    expect(JSON.parse(lines[1]!).endpoint.auth).toEqual(["******"]);
    expect(JSON.parse(lines[2]!).msg).toBe("interpolated ******");
    expect(JSON.parse(lines[4]!).secret).toBe("******");
    expect(out.text()).not.toContain(FRAGMENT);
  });

  it("prints ****** when it ends up in an error message", () => {
    const err = new Error(`could not use ${secret}`);
    expect(err.message).toBe("could not use ******");
    expect(inspect(err)).not.toContain(FRAGMENT);
  });
});
