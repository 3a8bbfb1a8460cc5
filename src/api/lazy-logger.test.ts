import { Writable } from "node:stream";
import Fastify, { LogController, type FastifyBaseLogger } from "fastify";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { lazyRequestLoggers } from "./lazy-logger.js";

function capture(): { lines: Record<string, unknown>[]; logger: pino.Logger } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: "debug", redact: { paths: ["secret"], censor: "******" } }, stream) };
}

describe("lazyRequestLoggers", () => {
  const apps: { close: () => Promise<unknown> }[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function build() {
    const { lines, logger } = capture();
    const parent = logger.child({ component: "http" });
    // As the gateway is set up: request lines come from `logApiRequests`, not from Fastify.
    const app = Fastify({ loggerInstance: parent as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
    lazyRequestLoggers(app);
    apps.push(app);
    // Fastify wraps the instance; its `child` is what makes each request's logger.
    const childCalls = vi.spyOn(app.log, "child");
    app.get("/quiet", async () => ({ ok: true }));
    app.get("/loud", async (req) => {
      req.log.warn({ secret: "s3cr3t", n: 1 }, "something to say");
      req.log.debug("and more");
      return { ok: true };
    });
    app.get("/level", async (req) => ({ level: req.log.level }));
    await app.ready();
    return { app, lines, childCalls };
  }

  it("makes no pino child for a request that logs nothing", async () => {
    const { app, lines, childCalls } = await build();
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: "/quiet" })).statusCode).toBe(200);
    expect(childCalls).not.toHaveBeenCalled();
    expect(lines.filter((l) => l.msg === "something to say")).toEqual([]);
  });

  it("writes a request's lines as an eager child would: the request id, the parent's bindings, redaction", async () => {
    const { app, lines, childCalls } = await build();
    const res = await app.inject({ url: "/loud" });
    expect(res.statusCode).toBe(200);
    // One child for the request, however many lines it wrote.
    expect(childCalls).toHaveBeenCalledTimes(1);
    const warn = lines.find((l) => l.msg === "something to say");
    expect(warn).toMatchObject({ level: 40, component: "http", n: 1, secret: "******" });
    expect(typeof warn!.reqId).toBe("string");
    const debug = lines.find((l) => l.msg === "and more");
    expect(debug).toMatchObject({ level: 20, reqId: warn!.reqId });
    // A second request gets its own id.
    await app.inject({ url: "/loud" });
    const ids = new Set(lines.filter((l) => l.msg === "something to say").map((l) => l.reqId));
    expect(ids.size).toBe(2);
  });

  it("reports the parent's level without making a child", async () => {
    const { app, childCalls } = await build();
    expect((await app.inject({ url: "/level" })).json()).toEqual({ level: "debug" });
    expect(childCalls).not.toHaveBeenCalled();
  });
});
