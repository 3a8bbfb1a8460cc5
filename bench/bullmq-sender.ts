/**
 * What a Node team would build instead of a webhook gateway, for `npm run bench` (phase `bullmq`):
 * a publish API on Fastify that enqueues into BullMQ on this machine's Redis and answers 202, and
 * a BullMQ worker in the same process that signs each message with the official `standardwebhooks`
 * package and posts it with undici, retrying failures (5 attempts, exponential backoff). No
 * tenants, routing, attempt records or logs: the least such a sender needs.
 *
 * Run by bench/bullmq.ts as its own process: `node --import tsx bench/bullmq-sender.ts`, with
 * BULLMQ_TARGET (the receiver's URL), BULLMQ_SECRET (whsec_…), BULLMQ_QUEUE and
 * BULLMQ_CONCURRENCY. Prints `{"url": …}` on stdout once it listens.
 */
import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import Fastify from "fastify";
import { Redis } from "ioredis";
import { Webhook } from "standardwebhooks";
import { Agent, request } from "undici";

const target = process.env.BULLMQ_TARGET!;
const queueName = process.env.BULLMQ_QUEUE ?? "webhooks";
const concurrency = Number(process.env.BULLMQ_CONCURRENCY ?? 32);
const webhook = new Webhook(process.env.BULLMQ_SECRET!.replace(/^whsec_/, ""));
const redisUrl = process.env.BULLMQ_REDIS ?? "redis://127.0.0.1:6379";

const queueConnection = new Redis(redisUrl, { maxRetriesPerRequest: 20 });
const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const queue = new Queue(queueName, { connection: queueConnection });
const dispatcher = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });

interface Job {
  id: string;
  eventType: string;
  payload: string;
}

const worker = new Worker<Job>(
  queueName,
  async (job) => {
    const { id, payload } = job.data;
    const at = new Date();
    const res = await request(target, {
      method: "POST",
      dispatcher,
      headers: {
        "content-type": "application/json",
        "webhook-id": id,
        "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
        "webhook-signature": webhook.sign(id, at, payload),
      },
      body: payload,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`endpoint answered ${res.statusCode}`);
  },
  { connection: workerConnection, concurrency },
);
worker.on("error", (err) => process.stderr.write(`worker: ${String(err)}\n`));

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post<{ Body: { eventType?: unknown; payload?: unknown } }>("/api/v1/app/:app/msg", async (req, reply) => {
  const { eventType, payload } = req.body ?? {};
  if (typeof eventType !== "string" || typeof payload !== "object" || payload === null) {
    return reply.status(422).send({ code: "E_VALIDATION", detail: "eventType and payload are required" });
  }
  const id = `msg_${randomUUID()}`;
  // The 202 waits for Redis to have the job (and, with appendfsync always, to have it on disk).
  await queue.add("deliver", { id, eventType, payload: JSON.stringify(payload) }, { jobId: id, attempts: 5, backoff: { type: "exponential", delay: 1_000 }, removeOnComplete: true, removeOnFail: 1_000 });
  return reply.status(202).send({ id });
});

const close = async () => {
  await app.close();
  await worker.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await dispatcher.close();
  queueConnection.disconnect();
  workerConnection.disconnect();
  process.exit(0);
};
process.once("SIGTERM", () => void close());
process.once("SIGINT", () => void close());

await worker.waitUntilReady();
const url = await app.listen({ host: "127.0.0.1", port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);
