import { ensureWebBuilt } from "./helpers/browser.js";

/**
 * Runs once, before any test file: builds the console bundle when it is missing or stale. Test
 * files run two at a time; each building it on its own raced (one build empties dist/web while
 * another gateway reads it, which then answered 404 for /console).
 */
export default function setup(): void {
  ensureWebBuilt();
}
