// Builds and runs test/doubles/vcsim/vmdkcheck: govmomi's own VMDK reader (vmdk.Import against an
// in-process vcsim), from Debian's golang-github-vmware-govmomi-dev in GOPATH mode like the vcsim
// harness (vcsim.ts), cached in ~/.cache/vmkiln/vcsim keyed by the source and Go version.
// A test helper: it spawns directly instead of through src/exec/run.ts (not product code).
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { REPO } from "./cli.js";

const SRC = join(REPO, "test/doubles/vcsim/vmdkcheck");

export function buildVmdkCheck(): string {
  const hash = createHash("sha256").update(readFileSync(join(SRC, "main.go"))).update(execFileSync("go", ["version"], { encoding: "utf8" }));
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "vmkiln", "vcsim");
  const bin = join(dir, `vmdkcheck-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  execFileSync("go", ["build", "-o", tmp, "."], { cwd: SRC, env: { ...process.env, GO111MODULE: "off", GOPATH: "/usr/share/gocode", GOFLAGS: "" }, stdio: ["ignore", "inherit", "inherit"] });
  renameSync(tmp, bin);
  return bin;
}

export interface VmdkCheck {
  ok: boolean;
  error?: string;
  /** Bytes vcsim's NFC upload received (from its log). */
  uploaded?: number;
}

export function govmomiImport(vmdk: string): VmdkCheck {
  const r = spawnSync(buildVmdkCheck(), [vmdk], { encoding: "utf8", timeout: 120_000 });
  const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as VmdkCheck;
  const m = /transferred (\d+) bytes/.exec(r.stderr);
  if (m) out.uploaded = Number(m[1]);
  if ((r.status === 0) !== out.ok) throw new Error(`vmdkcheck: exit ${r.status} but ok=${out.ok}: ${r.stderr}`);
  return out;
}
