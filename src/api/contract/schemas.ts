import { z } from "zod";

/**
 * Response schemas that become `components/schemas` entries (by `id`) in the OpenAPI document.
 * A registry of its own rather than zod's global one: ids stay unique to this document.
 */
export const components = z.registry<{ id: string }>();

/** Registers `schema` as the component `id`; references to it become `$ref`s. */
export function named<S extends z.ZodType>(id: string, schema: S): S {
  components.add(schema, { id });
  return schema;
}

/** ISO-8601 instants as the API writes them (`Date.toISOString()`). */
export const dateTime = z.iso.datetime();

/** A 422's `detail`: Svix's list of `{loc, msg, type}`. */
export const ValidationItem = named(
  "ValidationItem",
  z.object({ loc: z.array(z.string()), msg: z.string(), type: z.string() }),
);

/** Every error the API answers: a stable machine `code` and a `detail` (a list for 422). */
export const ErrorBody = named(
  "Error",
  z.looseObject({ code: z.string(), detail: z.union([z.string(), z.array(ValidationItem)]) }),
);

/** Svix's list envelope. */
export function listOf<S extends z.ZodType>(item: S) {
  return z.object({ data: z.array(item), iterator: z.string().nullable(), prevIterator: z.string().nullable(), done: z.boolean() });
}

/** An answer with no fields (`{}`), as Svix's resend answers 202. */
export const Empty = z.object({});
