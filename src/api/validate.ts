import type { z } from "zod";
import { HookwardenError } from "../errors/index.js";
import { zodItems } from "./errors.js";

/** Parses `value` with `schema`, throwing a 422 `E_VALIDATION` whose `loc` starts with `where`. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: "body" | "query" | "path" = "body"): z.output<S> {
  const r = schema.safeParse(value ?? (where === "body" ? undefined : {}));
  if (!r.success) throw HookwardenError.validation(zodItems(r.error, where));
  return r.data;
}
