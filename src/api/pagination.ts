import { z } from "zod";
import type { Page } from "../store/page.js";
import { parse } from "./validate.js";

export type { Page } from "../store/page.js";

/** The page parameters every list takes (declared on each list route for the document). */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(250).default(50),
  iterator: z.string().max(256).optional(),
  order: z.enum(["ascending", "descending"]).optional(),
});

export function parsePage(query: unknown, defaultOrder: Page["order"]): Page {
  const q = parse(pageQuery, query, "query");
  return { limit: q.limit, iterator: q.iterator, order: q.order ?? defaultOrder };
}

/** Svix's list envelope. Callers fetch `limit + 1` rows so `done` is known without a count. */
export function listResponse<T>(
  rows: T[],
  page: Page,
  cursor: (row: T) => string = (row) => (row as { id: string }).id,
): { data: T[]; iterator: string | null; prevIterator: string | null; done: boolean } {
  const done = rows.length <= page.limit;
  const data = done ? rows : rows.slice(0, page.limit);
  const last = data.at(-1);
  return { data, iterator: last === undefined ? null : cursor(last), prevIterator: null, done };
}

/** A page from a list route's parsed query (`pageQuery` extended with the route's filters). */
export function pageFrom(q: z.output<typeof pageQuery>, defaultOrder: Page["order"]): Page {
  return { limit: q.limit, iterator: q.iterator, order: q.order ?? defaultOrder };
}
