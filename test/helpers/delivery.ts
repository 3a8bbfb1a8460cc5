import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import selfsigned from "selfsigned";
import { expect } from "vitest";
import type { TestServer } from "./server.js";

/** An attempt as the API returns it (`GET .../attempt/msg/{msg_id}`). */
export interface ApiAttempt {
  id: string;
  msgId: string;
  endpointId: string;
  url: string;
  response: string;
  responseStatusCode: number;
  responseDurationMs: number;
  status: number;
  statusText: string;
  triggerType: number;
  timestamp: string;
  errorCode: string | null;
  tlsVerify: boolean;
}

export async function createApp(t: TestServer, name = "app"): Promise<string> {
  const res = await t.api("POST", "/api/v1/app", { name });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

/** Creates an endpoint through the raw API and fails the test unless it answers 201. */
export async function createEndpoint(t: TestServer, appId: string, body: Record<string, unknown>): Promise<any> {
  const res = await t.api("POST", `/api/v1/app/${appId}/endpoint`, body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export async function publish(t: TestServer, appId: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<any> {
  const res = await t.api("POST", `/api/v1/app/${appId}/msg`, { eventType: "test.event", payload: { n: 1 }, ...body }, headers);
  expect(res.status, res.text).toBe(202);
  return res.body;
}

/** Every attempt of one message, oldest first. */
export async function attemptsOf(t: TestServer, appId: string, msgId: string): Promise<ApiAttempt[]> {
  const res = await t.api("GET", `/api/v1/app/${appId}/attempt/msg/${msgId}?limit=250&order=ascending`);
  expect(res.status, res.text).toBe(200);
  return res.body.data as ApiAttempt[];
}

/** Every attempt made to one endpoint, oldest first. */
export async function attemptsTo(t: TestServer, appId: string, endpointId: string): Promise<ApiAttempt[]> {
  const res = await t.api("GET", `/api/v1/app/${appId}/attempt/endpoint/${endpointId}?limit=250&order=ascending`);
  expect(res.status, res.text).toBe(200);
  return res.body.data as ApiAttempt[];
}

export async function getEndpoint(t: TestServer, appId: string, endpointId: string): Promise<any> {
  const res = await t.api("GET", `/api/v1/app/${appId}/endpoint/${endpointId}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Deliveries still queued (waiting for a retry, deferred or leased). */
export async function pendingJobs(t: TestServer): Promise<number> {
  const row = await t.hw.ctx.store.db.selectFrom("jobs").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A 127.0.0.1 port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A certificate for 127.0.0.1 and localhost that no CA vouches for. */
export function selfSignedCert(): { key: string; cert: string } {
  const pems = selfsigned.generate([{ name: "commonName", value: "localhost" }], {
    days: 1,
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 2, value: "localhost" }] },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

/** An HTTPS webhook receiver on 127.0.0.1 with a self-signed certificate; counts what it got. */
export class HttpsReceiver {
  readonly received: { headers: Record<string, unknown>; body: string }[] = [];
  url = "";
  readonly #server: HttpsServer;

  constructor(tls: { key: string; cert: string }) {
    this.#server = createHttpsServer(tls, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(200, { "content-type": "text/plain" }).end("secure ok");
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
