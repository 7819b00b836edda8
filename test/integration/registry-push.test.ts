// Issue 18 item 1 against a real registry: Debian's docker-registry (distribution 2.8) on 127.0.0.1
// with TLS (its own CA) and htpasswd auth; what vmkiln pushes is read back by Debian's skopeo and
// compared byte for byte. Failure cases: a wrong password, an unreachable registry, an untrusted
// certificate, a registry dying mid-upload (for good, and coming back: the upload resumes), each with a
// clear error and every local file as it was. No VM here: a small qcow2 made with qemu-img stands in
// for a build's (qemu-build.test.ts pushes the qcow2 its build made).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, type CliResult } from "../helpers/cli.js";
import { startFaultProxy } from "../helpers/fault-proxy.js";
import { freePort, startRegistry, type TestRegistry } from "../helpers/registry.js";

let reg: TestRegistry;
let work: string;
let outDir: string;
let disk: string;
const outputs: string[] = [];

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const env = () => ({ VMKILN_REGISTRY_USERNAME: reg.user, VMKILN_REGISTRY_PASSWORD: reg.password });

async function cli(args: string[], e: Record<string, string> = env()): Promise<CliResult> {
  const r = await runCli(args, { REGISTRY_AUTH_FILE: join(work, "no-auth.json"), HOME: work, ...e });
  outputs.push(r.stdout, r.stderr);
  return r;
}

/** skopeo copy → dir: (the registry's manifest and blobs as files), with its own TLS and credentials. */
function skopeoCopy(ref: string, dest: string): { manifest: Record<string, unknown>; blob(digest: string): string } {
  execFileSync("skopeo", ["copy", "--src-cert-dir", reg.certDir, "--src-creds", `${reg.user}:${reg.password}`, `docker://${ref}`, `dir:${dest}`], { stdio: ["ignore", "pipe", "pipe"] });
  return {
    manifest: JSON.parse(readFileSync(join(dest, "manifest.json"), "utf8")) as Record<string, unknown>,
    blob: (d: string) => join(dest, d.replace(/^sha256:/, "")),
  };
}

function localState(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(outDir)) out[n] = sha(join(outDir, n));
  return out;
}

beforeAll(async () => {
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), "vmkiln-push-"));
  outDir = join(work, "out");
  mkdirSync(outDir);
  // A qcow2 with ~24 MiB of allocated clusters, in an output directory as a build leaves it.
  disk = join(outDir, "tiny.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "256M"]);
  const writes = Array.from({ length: 8 }, (_, i) => ["-c", `write -P 0x${(0x11 * (i + 1)).toString(16)} ${i * 24}M 3M`]).flat();
  execFileSync("qemu-io", [...writes, disk], { stdio: ["ignore", "pipe", "pipe"] });
  const size = statSync(disk).size;
  writeFileSync(
    join(outDir, "manifest.json"),
    JSON.stringify({ build_id: "test", created: "2026-12-01T10:00:00.000Z", artifacts: [{ name: "tiny.qcow2", format: "qcow2", size, sha256: sha(disk) }] }, null, 2) + "\n",
  );
  writeFileSync(join(outDir, "SHA256SUMS"), `${sha(disk)}  tiny.qcow2\n`);
}, 120_000);

afterAll(async () => {
  await reg?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
  // The password never reached any output of any run.
  for (const o of outputs) expect(o).not.toContain(reg.password);
});

describe("push to a TLS + htpasswd docker-registry, read back by skopeo", () => {
  it("containerDisk: an image whose layer holds disk/tiny.qcow2 (107:107), config with os/architecture/diff_ids", async () => {
    const r = await cli(["push", outDir, `oci://${reg.host}/vm/tiny:cd`, "--as", "containerdisk", "--ca-file", reg.caFile, "--chunk-size", "4M", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { digest: string; pinned: string; blobs: Array<{ skipped: boolean; sent: number }> };
    expect(res.pinned).toBe(`${reg.host}/vm/tiny@${res.digest}`);
    const x = skopeoCopy(`${reg.host}/vm/tiny:cd`, join(work, "cd"));
    const m = x.manifest as { mediaType: string; config: { digest: string; mediaType: string }; layers: Array<{ digest: string; mediaType: string }> };
    expect(m.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(m.layers).toHaveLength(1);
    expect(m.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
    const config = JSON.parse(readFileSync(x.blob(m.config.digest), "utf8"));
    expect(config).toMatchObject({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [m.layers[0]!.digest] } });
    // The layer as GNU tar sees it, then its disk compared byte for byte with the local qcow2.
    const layer = x.blob(m.layers[0]!.digest);
    const list = execFileSync("tar", ["--numeric-owner", "-tvf", layer], { encoding: "utf8" }).trim().split("\n");
    expect(list[0]).toMatch(/^drwxr-xr-x 107\/107 +0 .* disk\/$/);
    expect(list[1]).toMatch(/^-rw-r--r-- 107\/107 +\d+ .* disk\/tiny\.qcow2$/);
    const ex = join(work, "cd-x");
    mkdirSync(ex);
    execFileSync("tar", ["-xf", layer, "-C", ex]);
    expect(sha(join(ex, "disk", "tiny.qcow2"))).toBe(sha(disk));
    execFileSync("cmp", [join(ex, "disk", "tiny.qcow2"), disk]);
    // skopeo inspect reads it as an image of the right platform.
    const info = JSON.parse(execFileSync("skopeo", ["inspect", "--cert-dir", reg.certDir, "--creds", `${reg.user}:${reg.password}`, `docker://${reg.host}/vm/tiny:cd`], { encoding: "utf8" }));
    expect(info).toMatchObject({ Architecture: "amd64", Os: "linux", Digest: res.digest });
    // The digest went into manifest.json; the artifacts themselves are untouched.
    const mj = JSON.parse(readFileSync(join(outDir, "manifest.json"), "utf8"));
    expect(mj.published).toEqual([expect.objectContaining({ to: `oci://${reg.host}/vm/tiny:cd`, as: "containerdisk", digest: res.digest, pinned: res.pinned })]);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: outDir, stdio: "pipe" });
  });

  it("OCI artifact: artifactType application/vnd.diskimage.qcow2, the layer is the qcow2 itself; credentials from an auth file", async () => {
    const auth = join(work, "auth.json");
    writeFileSync(auth, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString("base64") } } }));
    const r = await cli(["push", disk, `oci://${reg.host}/vm/tiny:art`, "--as", "artifact", "--ca-file", reg.caFile, "--json"], { REGISTRY_AUTH_FILE: auth });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { digest: string };
    const x = skopeoCopy(`${reg.host}/vm/tiny:art`, join(work, "art"));
    const m = x.manifest as { artifactType: string; config: { mediaType: string; digest: string }; layers: Array<{ digest: string; mediaType: string; annotations: Record<string, string> }> };
    expect(m.artifactType).toBe("application/vnd.diskimage.qcow2");
    expect(m.config.mediaType).toBe("application/vnd.vmkiln.disk.config.v1+json");
    expect(JSON.parse(readFileSync(x.blob(m.config.digest), "utf8"))).toMatchObject({ architecture: "amd64", os: "linux", disk: { format: "qcow2", name: "tiny.qcow2", virtual_size: 256 * 1024 * 1024 } });
    expect(m.layers).toEqual([expect.objectContaining({ mediaType: "application/vnd.diskimage.qcow2", annotations: { "org.opencontainers.image.title": "tiny.qcow2" } })]);
    execFileSync("cmp", [x.blob(m.layers[0]!.digest), disk]);
    const mj = JSON.parse(readFileSync(join(outDir, "manifest.json"), "utf8"));
    expect(mj.published.map((p: { as: string; digest: string }) => [p.as, p.digest])).toContainEqual(["artifact", res.digest]);
  });

  it("pushing again sends no blob the registry has (HEAD first)", async () => {
    const r = await cli(["push", outDir, `oci://${reg.host}/vm/tiny:cd2`, "--ca-file", reg.caFile, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { blobs: Array<{ skipped: boolean; sent: number }> };
    expect(res.blobs.map((b) => [b.skipped, b.sent])).toEqual([
      [true, 0],
      [true, 0],
    ]);
  });
});

describe("failures: a clear error, local files as they were", () => {
  it("a wrong password exits 2 naming the registry, not the password", async () => {
    const before = localState();
    const r = await cli(["push", outDir, `oci://${reg.host}/vm/tiny:bad`, "--ca-file", reg.caFile], { VMKILN_REGISTRY_USERNAME: reg.user, VMKILN_REGISTRY_PASSWORD: "wrong-password-123" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`vmkiln: error: ${reg.host.replace(/\./g, "\\.")}: the registry refused the credentials \\(credentials from \\$VMKILN_REGISTRY_USERNAME/\\$VMKILN_REGISTRY_PASSWORD\\): HTTP 401`));
    expect(r.stderr + r.stdout).not.toContain("wrong-password-123");
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(localState()).toEqual(before);
  });

  it("no credentials at all: exit 2 with how to log in", async () => {
    const r = await cli(["push", outDir, `oci://${reg.host}/vm/tiny:anon`, "--ca-file", reg.caFile], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs credentials and none were found/);
    expect(r.stderr).toMatch(/hint: podman login/);
  });

  it("an untrusted certificate exits 2 with the --ca-file hint; nothing listening exits 1", async () => {
    const r = await cli(["push", outDir, `oci://${reg.host}/vm/tiny:tls`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TLS certificate not trusted/);
    expect(r.stderr).toMatch(/--ca-file/);
    const port = await freePort();
    const before = localState();
    const u = await cli(["push", outDir, `oci://127.0.0.1:${port}/vm/tiny:x`, "--ca-file", reg.caFile]);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: GET https://127\\.0\\.0\\.1:${port}/v2/ failed: ECONNREFUSED`));
    expect(localState()).toEqual(before);
  });

  it("the registry dying mid-upload for good: exit 1 after the retries, manifest.json unchanged", async () => {
    const proxy = await startFaultProxy(reg, { killOnPatch: 3 });
    try {
      const before = localState();
      const started = Date.now();
      const r = await cli(["push", outDir, `oci://${proxy.host}/vm/dies:x`, "--ca-file", reg.caFile, "--chunk-size", "2M", "--retries", "2"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/vmkiln: error: 127\.0\.0\.1:\d+\/vm\/dies: upload of layer disk\/tiny\.qcow2 sha256:[0-9a-f]{12} failed at byte 4194304 of \d+ \(chunk upload\), 3 attempts: /);
      // Two waits (0.5 s, 1 s) between the three attempts.
      expect(r.stderr.match(/retrying in \d/g)).toHaveLength(2);
      expect(r.stderr).toMatch(/hint: the registry stopped answering; nothing local was changed/);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(localState()).toEqual(before);
      expect(proxy.events).toEqual(["killed registry at PATCH #3 after 0 bytes"]);
    } finally {
      await proxy.close();
      await reg.start();
    }
  });

  it("the registry dying mid-upload and coming back: the upload asks the session's Range and goes on", async () => {
    const proxy = await startFaultProxy(reg, { killOnPatch: 3, restartAfterMs: 100 });
    try {
      const r = await cli(["push", outDir, `oci://${proxy.host}/vm/resumed:x`, "--ca-file", reg.caFile, "--chunk-size", "2M", "--json"]);
      expect(r.code, r.stderr + reg.log().slice(-2000)).toBe(0);
      const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { blobs: Array<{ size: number; sent: number; resumed: number; restarted: number }> };
      const layer = res.blobs[0]!;
      expect(layer).toMatchObject({ resumed: 1, restarted: 0 });
      // The chunk in flight is sent again, nothing before it.
      expect(layer.sent).toBe(layer.size + 2 * 1024 * 1024);
      expect(proxy.events).toEqual(["killed registry at PATCH #3 after 0 bytes", "registry restarted"]);
      // It asked the upload session where it stood (GET <location> → 204) and went on at byte 4 MiB.
      expect(proxy.seen.some((s) => s.method === "GET" && s.path.includes("/blobs/uploads/") && s.status === 204)).toBe(true);
      const patches = proxy.seen.filter((s) => s.method === "PATCH").map((s) => s.range);
      expect(patches.slice(0, 4)).toEqual(["0-2097151", "2097152-4194303", "4194304-6291455", "4194304-6291455"]);
      const x = skopeoCopy(`${reg.host}/vm/resumed:x`, join(work, "resumed"));
      const layerFile = (x.manifest as { layers: Array<{ digest: string }> }).layers[0]!.digest;
      const ex = join(work, "resumed-x");
      mkdirSync(ex);
      execFileSync("tar", ["-xf", x.blob(layerFile), "-C", ex]);
      execFileSync("cmp", [join(ex, "disk", "tiny.qcow2"), disk]);
    } finally {
      await proxy.close();
    }
  });

  it("Ctrl-C mid-upload: exit 130, no manifest tagged, every local file as it was", async () => {
    const proxy = await startFaultProxy(reg, { stallOnPatch: 2 });
    try {
      const before = localState();
      const run = startCli(["push", outDir, `oci://${proxy.host}/vm/interrupted:x`, "--ca-file", reg.caFile, "--chunk-size", "2M"], {
        REGISTRY_AUTH_FILE: join(work, "no-auth.json"),
        HOME: work,
        ...env(),
      });
      await proxy.stalled;
      run.child.kill("SIGINT");
      const r = await run.done;
      outputs.push(r.stdout, r.stderr);
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/vmkiln: interrupted by SIGINT; cleaned up/);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
      expect(proxy.events).toEqual(["holding PATCH #2"]);
      // Nothing after the interrupted chunk: no PUT, and above all no manifest; the upload session
      // was cancelled (DELETE on its URL, 204), not left holding the first chunk.
      expect(proxy.seen.filter((s) => s.method === "PUT")).toEqual([]);
      expect(proxy.seen.filter((s) => s.method === "DELETE").map((s) => [s.path.includes("/blobs/uploads/"), s.status])).toEqual([[true, 204]]);
      const inspect = (() => {
        try {
          execFileSync("skopeo", ["inspect", "--raw", "--cert-dir", reg.certDir, "--creds", `${reg.user}:${reg.password}`, `docker://${reg.host}/vm/interrupted:x`], { stdio: ["ignore", "pipe", "pipe"] });
          return "found";
        } catch (e) {
          return String((e as { stderr?: Buffer }).stderr ?? "");
        }
      })();
      expect(inspect).toMatch(/manifest unknown|name unknown/);
      expect(localState()).toEqual(before);
    } finally {
      await proxy.close();
    }
  });

  it("a registry that stored part of a chunk before dying will not resume it (distribution 2.x): a new session, same bytes", async () => {
    const proxy = await startFaultProxy(reg, { killOnPatch: 2, forwardBytes: 1024 * 1024, restartAfterMs: 100 });
    try {
      const r = await cli(["push", disk, `oci://${proxy.host}/vm/partial:x`, "--as", "artifact", "--ca-file", reg.caFile, "--chunk-size", "2M", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { blobs: Array<{ restarted: number }> };
      expect(res.blobs[0]!.restarted).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/starting it again from byte 0/);
      const x = skopeoCopy(`${reg.host}/vm/partial:x`, join(work, "partial"));
      execFileSync("cmp", [x.blob((x.manifest as { layers: Array<{ digest: string }> }).layers[0]!.digest), disk]);
    } finally {
      await proxy.close();
    }
  });
});
