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
