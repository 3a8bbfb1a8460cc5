import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.js";
import { BASE, PORTAL, navigate, onLink, usePath } from "./router.js";
import { SignIn, signInFromLink } from "./pages/sign-in.js";
import { Applications } from "./pages/applications.js";
import { Application } from "./pages/application.js";
import { Message } from "./pages/message.js";
import { Endpoint } from "./pages/endpoint.js";
import { Vault } from "./pages/vault.js";
import { Buckets } from "./pages/buckets.js";
import { Bucket } from "./pages/bucket.js";
import { Agents } from "./pages/agents.js";
import "./style.css";

/** The operator's branding of the portal (configuration): a stylesheet of this origin, a name and a logo. */
function useBrand(): { name: string; logo: boolean } | undefined {
  const [brand, setBrand] = useState<{ name: string; logo: boolean } | undefined>(undefined);
  useEffect(() => {
    if (!PORTAL) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/portal/brand.css";
    document.head.appendChild(link);
    fetch("/portal/brand.json")
      .then((r) => (r.ok ? (r.json() as Promise<{ name: string; logo: boolean }>) : undefined))
      .then((b) => b && setBrand(b))
      .catch(() => undefined);
  }, []);
  return brand;
}

function Brand({ brand }: { brand: { name: string; logo: boolean } | undefined }) {
  if (!PORTAL) return <span class="brand">Hookwarden</span>;
  return (
    <span class="brand" data-testid="brand">
      {brand?.logo && <img class="logo" src="/portal/brand/logo" alt="" />}
      {brand?.name ?? "Webhooks"}
    </span>
  );
}

function App() {
  const path = usePath();
  const brand = useBrand();
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  const [scope, setScope] = useState<string | null>(null);
  const check = () =>
    call<{ app: string | null }>("GET", "/console/api/session").then(
      (s) => (setScope(s.app), setSignedIn(true)),
      () => setSignedIn(false),
    );
  // A portal link's key first (when there is one), then whatever session this browser holds.
  useEffect(() => void (PORTAL ? signInFromLink() : Promise.resolve(false)).then(check), []);
  useEffect(() => {
    const title = document.querySelector("main h1")?.textContent;
    document.title = title ? `${title} · Hookwarden` : "Hookwarden console";
  });
  if (signedIn === undefined) return <main><p>Loading…</p></main>;
  if (!signedIn) return <SignIn onSignedIn={() => void check()} />;
  const signOut = async () => {
    await call("DELETE", "/console/api/session").catch(() => undefined);
    setSignedIn(false);
    navigate(`${BASE}/`);
  };
  const page = route(path, scope);
  return (
    <>
      <header class="top">
        <Brand brand={brand} />
        <nav aria-label="Main">
          <a href={`${BASE}/`} onClick={onLink}>
            {scope !== null ? "Home" : "Applications"}
          </a>
          {scope === null && (
            <>
              {" "}
              <a href={`${BASE}/buckets`} onClick={onLink}>
                Inbound
              </a>{" "}
              <a href={`${BASE}/agents`} onClick={onLink}>
                Agents
              </a>
            </>
          )}
        </nav>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <main>{page}</main>
    </>
  );
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The page for a path; an application-scoped session (portal) lands on its one application. */
function route(path: string, scope: string | null) {
  const parts = path.replace(/^\/(?:console|portal)\/?/, "").split("/").filter(Boolean).map(safeDecode);
  const [first, app, kind, id] = parts;
  if (first === "app" && app !== undefined) {
    if (kind === "msg" && id !== undefined) return <Message appId={app} msgId={id} />;
    if (kind === "endpoint" && id !== undefined) return <Endpoint appId={app} endpointId={id} />;
    if (kind === "vault" && !PORTAL) return <Vault appId={app} />;
    return <Application appId={app} />;
  }
  if (scope !== null) return <Application appId={scope} />;
  if (first === "buckets") return <Buckets />;
  if (first === "agents") return <Agents />;
  if (first === "bucket" && app !== undefined) return <Bucket bucketId={app} />;
  return <Applications />;
}

render(<App />, document.getElementById("root")!);
