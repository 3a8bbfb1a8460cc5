import { HookwardenError } from "../errors/index.js";

/**
 * Folds a current Svix field name and its older alias into one value (svix 2.x renamed
 * `filterTypes` to `eventTypes` and `rateLimit` to `throttleRate`; 1.x clients send the old names).
 * Both present and different is refused: guessing which one the caller meant could widen who
 * receives data.
 *
 * @example pickAlias("eventTypes", ["a"], "filterTypes", undefined) // ["a"]
 */
export function pickAlias<V>(current: string, a: V | undefined, alias: string, b: V | undefined): V | undefined {
  if (a !== undefined && b !== undefined && JSON.stringify(a) !== JSON.stringify(b)) {
    throw HookwardenError.invalidField(["body", alias], `${current} and ${alias} are the same setting and disagree; send only ${current}`);
  }
  return a !== undefined ? a : b;
}
