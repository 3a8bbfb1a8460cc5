/**
 * When to try again after attempt number `attempt` (0 = the first, immediate one) failed, or
 * `undefined` when the schedule is used up. Delays get ±20% jitter so that endpoints coming back
 * from an outage are not hit by every retry in the same second.
 *
 * @example nextRunAt([5000, 300000], 0, now) // now + 4000..6000
 */
export function nextRunAt(schedule: readonly number[], attempt: number, now: number, random: () => number = Math.random): number | undefined {
  const delay = schedule[attempt];
  if (delay === undefined) return undefined;
  return now + Math.round(delay * (0.8 + 0.4 * random()));
}

/**
 * Most a `Retry-After` may push the next attempt beyond the schedule's own delay: Svix's rule
 * (svix-webhooks PR #2203, "Respect Retry-After on error responses"): the wait is
 * `max(backoff, retryAfter)` capped at `backoff + 2 h`, so an endpoint answering
 * `Retry-After: 31536000` cannot park a message for a year, and one answering `1` cannot make
 * us retry sooner than the schedule.
 */
export const RETRY_AFTER_CAP_MS = 2 * 3_600_000;

/**
 * Milliseconds to wait according to a `Retry-After` value (RFC 9110 §10.2.3: delay-seconds or an
 * HTTP-date), or `undefined` when absent or not one of those forms (ignored, as Svix does). A date
 * in the past means 0.
 *
 * @example parseRetryAfter("120", now) // 120000
 * @example parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now) // 0 (in the past)
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,12}$/.test(v)) return Number(v) * 1000;
  // IMF-fixdate and the two obsolete forms RFC 9110 §5.6.7 still asks recipients to accept; a
  // looser check would let Date.parse read "1 day" or "2030" as dates.
  let text: string;
  if (IMF_FIXDATE.test(v) || RFC850_DATE.test(v)) text = v;
  else if (ASCTIME_DATE.test(v)) text = `${v} GMT`;
  else return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]{5,8}, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/** The statuses whose `Retry-After` is honoured (RFC 6585 §4, RFC 9110 §15.6.4). */
export function honoursRetryAfter(statusCode: number): boolean {
  return statusCode === 429 || statusCode === 503;
}

/**
 * When to try a failed attempt again, or `undefined` for never: the schedule is used up, or the
 * endpoint answered `410 Gone` (Standard Webhooks: the receiver asks never to be called again;
 * the recorder disables it). A 429 or 503 carrying `Retry-After` is not tried earlier than asked,
 * within `RETRY_AFTER_CAP_MS` of the schedule's delay; the attempt budget is unchanged.
 */
export function nextRetryAt(
  schedule: readonly number[],
  attempt: number,
  now: number,
  result: { ok: boolean; statusCode: number; headers: Record<string, string> },
  random: () => number = Math.random,
): number | undefined {
  if (result.ok || result.statusCode === 410) return undefined;
  const backoff = nextRunAt(schedule, attempt, now, random);
  if (backoff === undefined || !honoursRetryAfter(result.statusCode)) return backoff;
  const wait = parseRetryAfter(result.headers["retry-after"], now);
  if (wait === undefined) return backoff;
  return Math.max(backoff, Math.min(now + wait, now + schedule[attempt]! + RETRY_AFTER_CAP_MS));
}

/**
 * The longest a job can still be alive, counted from its creation: every delay of the schedule at
 * its jitter's longest and its `Retry-After` cap, an attempt's timeout each, and a lease. A job
 * only its holder can send (`jobs.held_by`) that is older was lost with its holder and may be
 * given up by anyone.
 */
export function jobLifetimeMs(config: { retrySchedule: readonly number[]; requestTimeout: number; leaseDuration: number }): number {
  const waits = config.retrySchedule.reduce((sum, d) => sum + Math.ceil(d * 1.2) + RETRY_AFTER_CAP_MS, 0);
  return waits + (config.retrySchedule.length + 1) * config.requestTimeout + config.leaseDuration;
}
