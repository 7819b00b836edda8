// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with a
// TLS certificate made by openssl here (SAN IP:127.0.0.1, its own CA) and htpasswd (bcrypt) auth,
// storage in a temp dir. It can be killed and started again on the same port and storage (the upload
// sessions survive: a fixed http.secret keeps their state tokens valid). A test helper: it spawns
// directly, not through src/exec.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:https";

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  dir: string;
  /** The CA that signed the registry's certificate (PEM file). */
  caFile: string;
  /** A directory skopeo takes as --cert-dir (ca.crt inside). */
  certDir: string;
  /** The registry's own certificate and key (for a proxy in front of it). */
  certFile: string;
  keyFile: string;
  user: string;
  password: string;
  /** The registry's log so far. */
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A CA and a server certificate for 127.0.0.1 signed by it. */
export function makeTlsFiles(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const o = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  o(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vmkiln test registry CA"]);
  o(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  o(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"]);
  return { caFile: join(dir, "ca.pem"), certFile: join(dir, "server.pem"), keyFile: join(dir, "server.key") };
}

export async function startRegistry(opts: { user?: string; password?: string } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "vmkiln-registry-"));
  const tls = makeTlsFiles(dir);
  const certDir = join(dir, "certs.d");
  mkdirSync(certDir);
  execFileSync("cp", [tls.caFile, join(certDir, "ca.crt")]);
  const user = opts.user ?? "pusher";
  const password = opts.password ?? "pw-" + Math.random().toString(36).slice(2, 12);
  execFileSync("htpasswd", ["-Bbc", join(dir, "htpasswd"), user, password], { stdio: ["ignore", "pipe", "pipe"] });
  const port = await freePort();
  mkdirSync(join(dir, "storage"));
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: { level: info, accesslog: { disabled: false } }",
      "storage:",
      `  filesystem: { rootdirectory: ${join(dir, "storage")} }`,
      "  delete: { enabled: true }",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  secret: vmkiln-test-registry-secret", // upload state tokens stay valid across restarts
      `  tls: { certificate: ${tls.certFile}, key: ${tls.keyFile} }`,
      "auth:",
      `  htpasswd: { realm: vmkiln-test, path: ${join(dir, "htpasswd")} }`,
      "",
    ].join("\n"),
  );
  let child: ChildProcess | undefined;
  let log = "";
  const reg: TestRegistry = {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    caFile: tls.caFile,
    certDir,
    certFile: tls.certFile,
    keyFile: tls.keyFile,
    user,
    password,
    log: () => log,
    async start() {
      const c = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "pipe", "pipe"] });
      child = c;
      c.stdout!.on("data", (d: Buffer) => (log += d.toString()));
      c.stderr!.on("data", (d: Buffer) => (log += d.toString()));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`docker-registry exited ${c.exitCode}: ${log.slice(-2000)}`);
        if (await answers(port, tls.caFile)) return;
        if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${port}: ${log.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill(signal: NodeJS.Signals = "SIGKILL") {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.kill(signal);
      });
    },
    async stop() {
      await reg.kill("SIGTERM");
    },
    async cleanup() {
      await reg.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await reg.start();
  return reg;
}

function answers(port: number, caFile: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/v2/", method: "GET", ca: execFileSync("cat", [caFile]), timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 401 || res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
