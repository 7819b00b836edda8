#!/usr/bin/env node
// Thin launcher: the CLI lives in src/cli/main.ts, compiled to dist/ by `npm run build`.
// process.exit (not exitCode) because a VM deliberately left running (--on-error=abort) still holds
// pipes that would keep the event loop alive. Before exiting, wait until stdout and stderr have
// drained: a pipe that is full (`vmkiln schema | less`) would otherwise lose the tail.
import { main } from "../dist/src/cli/main.js";

const code = await main(process.argv.slice(2));
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write("", resolve))));
process.exit(code);
