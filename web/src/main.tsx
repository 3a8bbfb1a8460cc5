import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.js";
import { navigate, onLink, usePath } from "./router.js";
import { SignIn } from "./pages/sign-in.js";
import { Applications } from "./pages/applications.js";
import { Application } from "./pages/application.js";
import { Message } from "./pages/message.js";
import "./style.css";

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    call("GET", "/console/api/session").then(
      () => setSignedIn(true),
      () => setSignedIn(false),
    );
  }, []);
  useEffect(() => {
    const title = document.querySelector("main h1")?.textContent;
    document.title = title ? `${title} · Hookwarden` : "Hookwarden console";
  });
  if (signedIn === undefined) return <main><p>Loading…</p></main>;
  if (!signedIn) return <SignIn onSignedIn={() => setSignedIn(true)} />;
  const signOut = async () => {
    await call("DELETE", "/console/api/session").catch(() => undefined);
    setSignedIn(false);
    navigate("/console/");
  };
  const m = /^\/console\/app\/([^/]+)(?:\/msg\/([^/]+))?\/?$/.exec(path);
  let page;
  if (m?.[2]) page = <Message appId={decodeURIComponent(m[1]!)} msgId={decodeURIComponent(m[2])} />;
  else if (m?.[1]) page = <Application appId={decodeURIComponent(m[1])} />;
  else page = <Applications />;
  return (
    <>
      <header class="top">
        <span class="brand">Hookwarden</span>
        <nav aria-label="Main">
          <a href="/console/" onClick={onLink}>Applications</a>
        </nav>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById("root")!);
