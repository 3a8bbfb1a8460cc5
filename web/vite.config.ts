import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// Preact through esbuild's automatic JSX runtime: no Babel plugin needed.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    // The polyfill would be an inline script, which the console's CSP refuses.
    modulePreload: { polyfill: false },
    // Small assets as data: URLs would need a looser CSP; keep every asset a file.
    assetsInlineLimit: 0,
    target: "es2022",
  },
  logLevel: "warn",
});
