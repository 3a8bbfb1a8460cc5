import { userInfo } from "node:os";

/**
 * Who ran a CLI step, for the audit log and events: `cli:<OS user>`. The CLI holds no API token;
 * whoever can run it can already read the data directory or the database URL, so the OS account
 * is the identity there is.
 */
export function cliActor(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? "unknown"}`;
  }
  return `cli:${user.slice(0, 64)}`;
}

/** An API caller as an actor: the token's name and id, never the token. */
export function tokenActor(tokenId: string, tokenName: string): string {
  return `${tokenName} (${tokenId})`;
}
