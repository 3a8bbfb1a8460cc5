import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  history.pushState(null, "", path);
  for (const l of listeners) l();
}

/** The current path, re-rendering on navigation and on the browser's back/forward buttons. */
export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      removeEventListener("popstate", update);
    };
  }, []);
  return path;
}

/** A same-document link: a real `<a href>` (keyboard, middle-click) that navigates without a reload. */
export function onLink(e: MouseEvent): void {
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.currentTarget as HTMLAnchorElement;
  e.preventDefault();
  navigate(a.pathname);
}

/** The customer portal (`/portal`) runs the same app, limited to one application. */
export const PORTAL = location.pathname === "/portal" || location.pathname.startsWith("/portal/");
export const BASE = PORTAL ? "/portal" : "/console";
