// vcsim with vmkiln's shim (test/doubles/vcsim, a TEST DOUBLE of vCenter: test/doubles/README.md
// lists what it models and where each rule comes from): built from Debian's golang-go and
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
  leases(): Promise<Record<string, LeaseRecord>>;
  /** OvfManager.CreateDescriptor answers, in order. */
  descriptors(): Promise<Array<{ vm: string; name: string; ovfFiles: Array<{ deviceId: string; path: string; size: number }>; sha256: string }>>;
  /** Which REST flavours answer, and every REST request received ("METHOD /path"); `serve` switches. */
  rest(serve?: Array<"api" | "rest">): Promise<{ serving: string[]; requests: string[] }>;
  /** Changes the NFC download pace (0: unpaced) for downloads that start next. */
  nfcPace(bytesPerSecond: number): Promise<void>;
  stop(): Promise<void>;
}

export interface LeaseRecord {
  vm: string;
  /** initializing, ready, done, aborted, timedout, error */
  state: string;
  timeoutSeconds: number;
  /** Seconds from ExportVm until the lease was ready. */
  initSeconds: number;
  progress: number[];
  /** Seconds after ready of each HttpNfcLeaseProgress. */
  keepAlives: number[];
  downloads: Array<{ file: string; status: number; bytes: number; seconds: number; cut: boolean }>;
}

export interface VcsimOptions {
  username?: string;
  password?: string;
  /** HttpNfcLeaseInfo.leaseTimeout in seconds (vSphere's 300 when unset). */
  leaseTimeoutSeconds?: number;
  /** Least time an export lease stays initializing (1000 when unset). */
  leaseInitDelayMs?: number;
  /** Pace NFC downloads (unpaced when unset). */
  nfcBytesPerSecond?: number;
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

export async function startVcsim(opts: VcsimOptions = {}): Promise<Vcsim> {
  const bin = buildVcsim();
  const dir = await mkdtemp(join(tmpdir(), "vmkiln-vcsim-"));
  const caFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", caFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { stdio: "ignore" });
  const username = opts.username ?? "vmkiln-test";
  const password = opts.password ?? "s3cret-vcsim-pass";
  const knobs = [
    ...(opts.leaseTimeoutSeconds === undefined ? [] : ["-lease-timeout", `${opts.leaseTimeoutSeconds}s`]),
    ...(opts.leaseInitDelayMs === undefined ? [] : ["-lease-init-delay", `${opts.leaseInitDelayMs}ms`]),
    ...(opts.nfcBytesPerSecond === undefined ? [] : ["-nfc-bytes-per-second", String(opts.nfcBytesPerSecond)]),
  ];
  const child: ChildProcess = spawn(bin, ["-tlscert", caFile, "-tlskey", keyFile, "-username", username, "-password", password, ...knobs], { stdio: ["ignore", "pipe", "pipe"] });
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
    const get = async (path: string, method = "GET") => {
      // Node's fetch has no per-call CA option: use curl, which the host has anyway.
      const out = execFileSync("curl", ["-sf", "-X", method, "--cacert", caFile, `${origin}${path}`], { encoding: "utf8" });
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
      descriptors: async () => (await get("/_test/descriptors")) as Awaited<ReturnType<Vcsim["descriptors"]>>,
      nfcPace: async (n) => void (await get(`/_test/nfc?bytesPerSecond=${n}`, "POST")),
      rest: async (serve) => (await get(serve ? `/_test/rest?serve=${serve.join(",")}` : "/_test/rest", serve ? "POST" : "GET")) as Awaited<ReturnType<Vcsim["rest"]>>,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
