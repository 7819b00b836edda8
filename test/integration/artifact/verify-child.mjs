// Child process for verify-memory.test.ts: runs `vmkiln verify <ova>` through the compiled CLI entry
// (dist/, built by `npm run test:integration`) and prints its exit code, duration and peak RSS
// (VmHWM), so the test measures this process alone.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [distRoot, target] = process.argv.slice(2);
const { main } = await import(join(distRoot, "src/cli/main.js"));
let stdout = "";
let stderr = "";
const sink = (append) => ({ write: (s) => (append(String(s)), true), isTTY: false });
const started = Date.now();
const code = await main(["verify", target], { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
const ms = Date.now() - started;
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1];
// The finding codes printed ("CODE: member: message" lines), once each.
const codes = [...new Set(stdout.split("\n").map((l) => /^([A-Z][A-Z0-9_]+): /.exec(l)?.[1]).filter(Boolean))];
process.stdout.write(JSON.stringify({ code, ms, vmHwmKiB: Number(hwm), codes, stderr: stderr.slice(0, 2000) }) + "\n");
