#!/usr/bin/env node
// Runs the compiled CLI (`npm run build` produces dist/). `npm start` builds first.
import "../dist/cli/main.js";
