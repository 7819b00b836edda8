// Rebuilds dist/ when any src/ or drivers/ file is newer than its compiled output (or has none).
// Run under flock by test/helpers/built-cli.ts, so parallel test files build once.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../..", import.meta.url));

function* sources(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) yield p;
  }
}

function stale() {
  for (const top of ["src", "drivers"]) {
    for (const src of sources(join(repo, top))) {
      const out = join(repo, "dist", relative(repo, src)).replace(/\.ts$/, ".js");
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) return true;
    }
  }
  return false;
}

if (stale()) {
  try {
    execFileSync(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: repo, stdio: "pipe" });
  } catch (err) {
    // tsc prints its diagnostics on stdout.
    process.stderr.write(String(err.stdout ?? "") + String(err.stderr ?? ""));
    process.exit(1);
  }
}
