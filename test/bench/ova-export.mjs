// The OVA export step alone, without a guest: CPU time (user + system) and peak RSS of vmkiln's
// two-pass VMDK-into-OVA export on a synthetic build overlay of the fixture image (64 MiB of random
// data, 32 MiB of written zeros, 16 MiB of a pattern: what a build changes). CPU time stays
// meaningful on a busy machine; wall time does not, so it is not reported.
//   npm run build && node test/bench/ova-export.mjs [--runs N] [--baseline DIST_ROOT]
// --baseline: another build's output dir (e.g. an older commit's `tsc --outDir`), run alternately.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const runs = Number(opt("--runs", "2"));
const roots = [["this", join(repo, "dist")], ...(opt("--baseline") ? [["baseline", opt("--baseline")]] : [])];

const dir = mkdtempSync(join(tmpdir(), "vmkiln-bench-ova-export-"));
try {
  const fixture = execFileSync("bash", [join(repo, "fixtures/guest/build.sh")], { encoding: "utf8" }).trim().split("\n").at(-1);
  const overlay = join(dir, "ov.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", fixture, "-F", "qcow2", overlay]);
  const rnd = join(dir, "rnd");
  writeFileSync(rnd, randomBytes(64 * 1024 * 1024));
  execFileSync("qemu-io", ["-c", `write -s ${rnd} 256M 64M`, "-c", "write -P 0 512M 32M", "-c", "write -P 0x5a 768M 16M", overlay], { stdio: "ignore" });
  const child = join(repo, "test/bench/lib/ova-export-child.mjs");
  for (let i = 1; i <= runs; i++) {
    for (const [label, root] of roots) {
      const r = spawnSync("/usr/bin/time", ["-v", process.execPath, child, root, overlay, join(dir, "out")], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${label} run ${i} failed: ${r.stderr}`);
      const field = (name) => Number(new RegExp(`${name}: ([0-9.]+)`).exec(r.stderr)?.[1]);
      const cpuS = field("User time \\(seconds\\)") + field("System time \\(seconds\\)");
      const rssMB = Math.round(field("Maximum resident set size \\(kbytes\\)") / 1024);
      const j = JSON.parse(r.stdout.trim().split("\n").at(-1));
      console.log(`${label} run ${i}: CPU ${cpuS.toFixed(2)} s (pass 1 ${(j.pass1CpuMs / 1000).toFixed(2)} s, pass 2 ${(j.pass2CpuMs / 1000).toFixed(2)} s), peak RSS ${rssMB} MB, clusters ${JSON.stringify(j.clusters)}, work dir left ${JSON.stringify(j.workLeft ?? [])}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
