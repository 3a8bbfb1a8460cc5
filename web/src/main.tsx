import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.js";
import { BASE, PORTAL, navigate, onLink, usePath } from "./router.js";
import { SignIn } from "./pages/sign-in.js";
import { Applications } from "./pages/applications.js";
import { Application } from "./pages/application.js";
import { Message } from "./pages/message.js";
import "./style.css";

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  const [scope, setScope] = useState<string | null>(null);
  const check = () =>
    call<{ app: string | null }>("GET", "/console/api/session").then(
      (s) => (setScope(s.app), setSignedIn(true)),
      () => setSignedIn(false),
    );
  useEffect(() => void check(), []);
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
  const m = /^\/(?:console|portal)\/app\/([^/]+)(?:\/msg\/([^/]+))?\/?$/.exec(path);
  let page;
  if (m?.[2]) page = <Message appId={decodeURIComponent(m[1]!)} msgId={decodeURIComponent(m[2])} />;
  else if (m?.[1]) page = <Application appId={decodeURIComponent(m[1])} />;
  else if (scope !== null) page = <Application appId={scope} />;
  else page = <Applications />;
  return (
    <>
      <header class="top">
        <span class="brand">{PORTAL ? "Webhooks" : "Hookwarden"}</span>
        <nav aria-label="Main">
          <a href={`${BASE}/`} onClick={onLink}>
            {scope !== null ? "Home" : "Applications"}
          </a>
        </nav>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById("root")!);
