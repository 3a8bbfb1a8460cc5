import { brokerAddress, brokerName, queryParams, type BrokerAddress } from "../url-params.js";

export interface NatsTarget extends BrokerAddress {
  subject: string;
  /** The stream the subject must land in; JetStream refuses the publish otherwise. */
  stream: string | undefined;
}

/** Publish subjects: dot-separated tokens, no wildcards or whitespace. */
const SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;
/** JetStream stream names: no whitespace, dots, wildcards or path separators. */
const STREAM = /^[^\s.*>/\\]+$/;

/**
 * `nats://host[:4222]?subject=S[&stream=NAME]`: a JetStream publish to subject S, acknowledged by
 * the stream that captures it. Hookwarden does not create streams (retention and storage are the
 * operator's decision): a subject no stream captures fails with `E_BROKER_NOT_FOUND`.
 */
export function parseNatsUrl(url: URL): NatsTarget {
  const address = brokerAddress(url, 4222);
  if (url.pathname !== "" && url.pathname !== "/") throw new Error("NATS URLs have no path; give subject= and stream=");
  const q = queryParams(url, ["subject", "stream"]);
  const subject = q.get("subject");
  if (subject === undefined) throw new Error("subject= is required");
  brokerName("subject", subject, 255);
  if (!SUBJECT.test(subject)) throw new Error("subject must be dot-separated tokens without wildcards or whitespace");
  const stream = q.get("stream");
  if (stream !== undefined) {
    brokerName("stream", stream, 255);
    if (!STREAM.test(stream)) throw new Error("stream may not contain whitespace, '.', '*', '>', '/' or '\\'");
  }
  return { ...address, subject, stream };
}
