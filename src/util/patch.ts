/** A partial update in which an absent field and an `undefined` one both mean "leave as is". */
export type Patch<T> = { [K in keyof T]?: T[K] | undefined };
