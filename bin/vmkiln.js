#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli/main.ts, compiled to dist/ by `npm run build`.
// process.exit (not exitCode) because a VM deliberately left running (--on-error=abort) still holds
// pipes that would keep the event loop alive; stdout/stderr writes are synchronous for files and
// pipes on Linux, so nothing is lost.
import { main } from "../dist/src/cli/main.js";

process.exit(await main(process.argv.slice(2)));
