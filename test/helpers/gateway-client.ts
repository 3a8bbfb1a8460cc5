import { Pool } from "undici";

export interface PublishOutcome {
  status: number;
  /** The message id when the gateway answered 202. */
  id: string | undefined;
}

/**
 * The few admin API calls the crash tests and the bench make against a gateway child process,
 * over one keep-alive connection pool (as a real producer would).
 */
export class GatewayClient {
  readonly #pool: Pool;
  readonly #auth: string;

  constructor(url: string, token: string, connections = 64) {
    this.#pool = new Pool(url, { connections, keepAliveTimeout: 10_000, pipelining: 1 });
    this.#auth = `Bearer ${token}`;
  }

  async #call(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const res = await this.#pool.request({
      method,
      path,
      headers: { authorization: this.#auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async #json<T>(method: "GET" | "POST", path: string, body: unknown, expect: number): Promise<T> {
    const { status, text } = await this.#call(method, path, body);
    if (status !== expect) throw new Error(`${method} ${path} answered ${status}: ${text}`);
    return JSON.parse(text) as T;
  }

  createApp(uid: string): Promise<{ id: string }> {
    return this.#json("POST", "/api/v1/app", { name: uid, uid }, 201);
  }

  createEndpoint(appId: string, url: string): Promise<{ id: string }> {
    return this.#json("POST", `/api/v1/app/${appId}/endpoint`, { url }, 201);
  }

  /** `body` is the request body, pre-serialised so every publish sends the same bytes. */
  async publish(appId: string, body: string): Promise<PublishOutcome> {
    const { status, text } = await this.#call("POST", `/api/v1/app/${appId}/msg?with_content=false`, body);
    return { status, id: status === 202 ? (JSON.parse(text) as { id: string }).id : undefined };
  }

  /** A bucket (`settings`: auth, ephemeral, ...), as `POST /api/v1/bucket` answers it. */
  createBucket(name: string, settings: Record<string, unknown> = {}): Promise<{ id: string }> {
    return this.#json("POST", "/api/v1/bucket", { name, ...settings }, 201);
  }

  /** An input of `bucketId`; `settings` carries `verification`, `response`, `dedupe`. */
  createInput(bucketId: string, settings: Record<string, unknown> = {}): Promise<{ id: string; url: string }> {
    return this.#json("POST", `/api/v1/bucket/${bucketId}/input`, { name: "in", ...settings }, 201);
  }

  /** A URL output of `bucketId`. */
  createOutput(bucketId: string, url: string): Promise<{ id: string }> {
    return this.#json("POST", `/api/v1/bucket/${bucketId}/output`, { type: "url", url }, 201);
  }

  /** The id of every request stored in `bucketId`, following the list's iterator to the end. */
  async listRequestIds(bucketId: string): Promise<string[]> {
    const ids: string[] = [];
    let iterator: string | null = null;
    for (;;) {
      const page: { data: { id: string }[]; iterator: string | null; done: boolean } = await this.#json(
        "GET",
        `/api/v1/bucket/${bucketId}/request?limit=250${iterator ? `&iterator=${encodeURIComponent(iterator)}` : ""}`,
        undefined,
        200,
      );
      ids.push(...page.data.map((r) => r.id));
      if (page.done || page.iterator === null) return ids;
      iterator = page.iterator;
    }
  }

  /** One stored request, decrypted by the gateway (`request.body` is utf8 text for a utf8 body). */
  getRequest(bucketId: string, requestId: string): Promise<{ id: string; request: { body: string; bodyEncoding: string } | null }> {
    return this.#json("GET", `/api/v1/bucket/${bucketId}/request/${requestId}`, undefined, 200);
  }

  /** Jobs still queued (due, leased or waiting for a retry), from the Prometheus endpoint. */
  async queueDepth(): Promise<number> {
    const { status, text } = await this.#call("GET", "/metrics");
    if (status !== 200) throw new Error(`/metrics answered ${status}`);
    let total = 0;
    for (const m of text.matchAll(/^hookwarden_queue_depth\{state="[a-z]+"\} (\d+)/gm)) total += Number(m[1]);
    return total;
  }

  close(): Promise<void> {
    return this.#pool.destroy();
  }
}
