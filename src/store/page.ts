/** One page of a list: how many rows, after which cursor, in which order (parsed at the API edge). */
export interface Page {
  limit: number;
  iterator: string | undefined;
  order: "ascending" | "descending";
}
