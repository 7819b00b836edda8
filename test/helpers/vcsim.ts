// vcsim with vmkiln's shim (test/doubles/vcsim): built from Debian's golang-go and
// golang-github-vmware-govmomi-dev in GOPATH mode, cached in ~/.cache/vmkiln/vcsim keyed by the hash
// of its sources, started on 127.0.0.1 with a 2048-bit certificate made here (openssl).
// A test helper: it spawns directly instead of through src/exec/run.ts (not product code).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../doubles/vcsim/", import.meta.url));
const GOPATH = "/usr/share/gocode";

export interface Vcsim {
  /** https://127.0.0.1:PORT */
  url: string;
  caFile: string;
  /** Local directory behind the LocalDS_0 datastore. */
  datastoreDir: string;
  username: string;
  password: string;
  /** PutUsbScanCodes calls the shim recorded for a VM moref. */
  scancodes(vm: string): Promise<Array<{ keyEvents: Array<{ usbHidCode: number; modifiers: Record<string, boolean> }> }>>;
  leases(): Promise<Record<string, { vm: string; progress: number[]; state: string }>>;
  stop(): Promise<void>;
}

/** Builds the harness (about 15 s cold, instant when cached) and returns the binary's path. */
export function buildVcsim(): string {
  const hash = createHash("sha256");
  for (const f of readdirSync(SRC).filter((n) => n.endsWith(".go")).sort()) hash.update(f).update(readFileSync(join(SRC, f)));
  hash.update(execFileSync("go", ["version"], { encoding: "utf8" }));
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "vmkiln", "vcsim");
  const bin = join(dir, `vcsim-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  execFileSync("go", ["build", "-o", tmp, "."], {
    cwd: SRC,
    env: { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  renameSync(tmp, bin);
  return bin;
}

export async function startVcsim(opts: { username?: string; password?: string } = {}): Promise<Vcsim> {
  const bin = buildVcsim();
  const dir = await mkdtemp(join(tmpdir(), "vmkiln-vcsim-"));
  const caFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", caFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });
  const username = opts.username ?? "vmkiln-test";
  const password = opts.password ?? "s3cret-vcsim-pass";
  const child: ChildProcess = spawn(bin, ["-tlscert", caFile, "-tlskey", keyFile, "-username", username, "-password", password], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ready = await new Promise<{ url: string; datastore: string }>((resolve, reject) => {
      let buf = "";
      child.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf("\n");
        if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as { url: string; datastore: string });
      });
      child.on("exit", (code) => reject(new Error(`vcsim exited (${code}) before it was ready: ${stderr.slice(-2000)}`)));
      setTimeout(() => reject(new Error("vcsim not ready within 30 s")), 30_000);
    });
    const origin = new URL(ready.url).origin;
    const get = async (path: string) => {
      // Node's fetch has no per-call CA option: use curl, which the host has anyway.
      const out = execFileSync("curl", ["-sf", "--cacert", caFile, `${origin}${path}`], { encoding: "utf8" });
      return JSON.parse(out) as unknown;
    };
    return {
      url: origin,
      caFile,
      datastoreDir: ready.datastore,
      username,
      password,
      scancodes: async (vm) => (await get(`/_test/scancodes?vm=${encodeURIComponent(vm)}`)) as Awaited<ReturnType<Vcsim["scancodes"]>>,
      leases: async () => (await get("/_test/leases")) as Awaited<ReturnType<Vcsim["leases"]>>,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
