import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config/index.js";
import { SecretValue } from "../vault/secret-value.js";
import { createLogger } from "./index.js";

function sink(tty: boolean): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  if (tty) Object.assign(stream, { isTTY: true });
  let text = "";
  stream.on("data", (c: Buffer) => (text += c.toString("utf8")));
  return { stream, text: () => text };
}

describe("log format", () => {
  it("is JSON lines when stdout is not a terminal", () => {
    const out = sink(false);
    createLogger({ level: "info", destination: out.stream }).info({ route: "/api/v1/app", status: 201 }, "api request");
    expect(JSON.parse(out.text())).toMatchObject({ msg: "api request", route: "/api/v1/app", status: 201 });
  });

  it("is one readable line per entry on a terminal, and JSON when asked", () => {
    const tty = sink(true);
    createLogger({ level: "info", destination: tty.stream }).info({ route: "/api/v1/app", status: 201 }, "api request");
    const line = tty.text();
    expect(() => JSON.parse(line)).toThrow();
    // Colours on a terminal: strip them to read what a person sees.
    const plain = line.replace(/\u001b\[[0-9;]*m/g, "");
    expect(plain).toMatch(/INFO.*api request/);
    expect(plain).toContain('route: "/api/v1/app"');

    const forced = sink(true);
    createLogger({ level: "info", destination: forced.stream, format: "json" }).info("x");
    expect(JSON.parse(forced.text())).toMatchObject({ msg: "x" });
    const pretty = sink(false);
    createLogger({ level: "info", destination: pretty.stream, format: "pretty" }).info("hello there");
    expect(pretty.text()).toMatch(/INFO.*hello there/);
  });

  it("prints secrets as ****** in both formats", () => {
    for (const format of ["json", "pretty"] as const) {
      const out = sink(false);
      createLogger({ level: "info", destination: out.stream, format }).info({ value: new SecretValue("s3cret-canary"), token: "plain-token-canary" }, "m");
      expect(out.text()).not.toContain("s3cret-canary");
      expect(out.text()).not.toContain("plain-token-canary");
    }
  });

  it("takes --log-format / HOOKWARDEN_LOG_FORMAT and refuses anything else", () => {
    expect(loadConfig({}, { HOOKWARDEN_LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(loadConfig({ logFormat: "pretty" }, { HOOKWARDEN_LOG_FORMAT: "json" }).logFormat).toBe("pretty");
    expect(loadConfig({}, {}).logFormat).toBeUndefined();
    expect(() => loadConfig({}, { HOOKWARDEN_LOG_FORMAT: "xml" })).toThrow(/logFormat/);
  });
});
