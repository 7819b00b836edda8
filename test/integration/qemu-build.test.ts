// Issue 2 acceptance: build the README's example on the fixture guest (real QEMU, cloud-init, SSH),
// then boot the exported qcow2 as a user would and check what the build promised.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, REPO, type CliResult } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { GENERALIZE_DIRS, leftovers } from "../helpers/generalized.js";
import { readImageTrees } from "../helpers/guestfs.js";
import { qemuProcesses, qemuSnapshot } from "../helpers/processes.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { spdxSchemaErrors } from "../helpers/spdx.js";

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
import { govmomiImport } from "../helpers/vmdkcheck.js";

const EXAMPLE = join(REPO, "fixtures/examples/qemu-cloud-image.yaml");
// `vmkiln test` (issue 16) runs on this build's artifacts: no build of its own, one boot per artifact.
const NODE_CHECKS = join(REPO, "test/integration/goss/node.yaml");
const BROKEN_CHECKS = join(REPO, "test/integration/goss/broken.yaml");
const CHECK_VARS = join(REPO, "test/integration/goss/vars.yaml");
/** The properties node.yaml checks (one result each). */
const NODE_PROPERTIES = 26;
const FIRST_BOOT_PASSES = [
  "machine_id: regenerated", "ssh_host_keys: regenerated", "build_user: user", "build_user: home", "build_user: sudoers", "build_user: authorized_keys",
  "cloud_init: first boot", "cloud_init: instances", "cloud_init: status", "logs: journal boots", "logs: journal directories", "logs: log files",
].map((p) => `FirstBoot: ${p}`);
/** What `vmkiln test` prints for broken.yaml's failures on this image: resource, property, expected, found. */
const BROKEN_LINES = [
  "File: /etc/vmkiln/greeting: contents: expected to have patterns [\"not the greeting\"] (missing: [\"not the greeting\"]), found \"hello from vmkiln\\n\"",
  "Package: no-such-package-vmkiln: installed: expected to equal true, found false",
  "Service: ssh: enabled: expected to equal false, found true",
  "Port: tcp:2222: listening: expected to equal true, found false",
  "User: root: shell: expected to equal \"/bin/false\", found \"/bin/bash\"",
  "Group: root: gid: expected to be numerically == 42, found 0",
  "KernelParam: kernel.ostype: value: expected to have prefix \"BSD\", found \"Linux\"",
  "Process: no-such-daemon: running: expected to equal true, found false",
  "Mount: /: filesystem: expected to equal \"vfat\", found \"ext4\"",
  "HTTP: http://127.0.0.1:9/: status: error: http://127.0.0.1:9/: [Errno 111] Connection refused",
  "Addr: tcp://127.0.0.1:9: reachable: expected to equal true, found false",
  "DNS: no-such-host.invalid: resolvable: expected to equal true, found false",
  "Interface: lo: mtu: expected to be numerically < 1000, found 65536",
  "Command: echo out; echo err >&2; exit 3: exit-status: expected to be numerically == 0, found 3",
  "Command: echo out; echo err >&2; exit 3: stderr: expected to have patterns [\"!/err/\"] (missing: [\"!/err/\"]), found \"err\\n\"",
];

describe("qemu: cloud image → provisioned, generalized qcow2", () => {
  let work: string;
  let out: string;
  let res: CliResult;

  // Other suites or users may run VMs on this machine: only ours must be gone afterwards.
  const vms = qemuSnapshot();
  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-it-"));
    out = join(work, "out");
    res = await runCli(["build", EXAMPLE, "--json", "-var", `output_dir=${out}`], { VMKILN_FIXTURE_IMAGE: image });
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  const logs = () => res.events.filter((e) => e.type === "log").map((e) => String(e.message));
  const outputLines = () => res.events.filter((e) => e.type === "output").map((e) => String(e.line));

  it("exits 0 and reports every step with a duration", () => {
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const ends = res.events.filter((e) => e.type === "step-end");
    expect(ends.map((e) => e.step)).toEqual(["prepare", "fetch source", "ssh key", "cidata", "create vm", "start vm", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export"]);
    for (const e of ends) expect(typeof e.durationMs).toBe("number");
    // The fallback to TCG on this kvm-pvm host is loud, never silent.
    if (existsSync("/sys/module/kvm_pvm")) expect(res.events.some((e) => e.type === "log" && e.level === "warn" && /falling back to TCG/.test(String(e.message)))).toBe(true);
  });

  it("writes the qcow2, a GNU SHA256SUMS and manifest.json, and nothing half-written", () => {
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "debian-12-node.ova", "debian-12-node.ova.sha256", "debian-12-node.qcow2", "debian-12-node.spdx.json", "manifest.json"]);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out });
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(/^[0-9a-f]{64}  debian-12-node\.ova$/m);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(m.template.name).toBe("debian-12-node");
    expect(m.driver).toBe("qemu");
    expect(m.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.vmkiln_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(m.artifacts).toHaveLength(3); // + the SBOM (output.sbom defaults to true)
    expect(m.artifacts[0]).toMatchObject({ name: "debian-12-node.qcow2", format: "qcow2", size: statSync(join(out, "debian-12-node.qcow2")).size });
    expect(m.artifacts[1]).toMatchObject({ name: "debian-12-node.ova", format: "ova", size: statSync(join(out, "debian-12-node.ova")).size });
    for (const k of ["convert_qcow2_ms", "convert_vmdk_ms", "pack_ova_ms"]) expect(m.durations_ms[k]).toBeGreaterThan(0);
    expect(m.steps.map((s: { name: string }) => s.name)).toContain("provision");
    // No staging dir beside the output.
    expect(readdirSync(dirname(out)).filter((n) => n.includes("vmkiln-partial"))).toEqual([]);
  });

  it("exports a clean, compressed, standalone qcow2", () => {
    const img = join(out, "debian-12-node.qcow2");
    execFileSync("qemu-img", ["check", img]); // exit 0 = clean
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", img], { encoding: "utf8" }));
    expect(info.format).toBe("qcow2");
    expect(info["backing-filename"]).toBeUndefined();
    expect(info["virtual-size"]).toBe(4 * 1024 ** 3);
  });

  describe("offline with libguestfs, not through vmkiln (issue 14)", () => {
    let tree: string;
    beforeAll(async () => {
      if (res.code !== 0) return;
      tree = await readImageTrees(join(out, "debian-12-node.qcow2"), [...GENERALIZE_DIRS, "/opt/vmkiln-files"], join(work, "image"));
    });

    it("holds nothing of the build boot that its first boot would make again", () => {
      expect(leftovers(tree, { buildUser: "builder", defaultUser: "debian", hostname: "debian-12-node" })).toEqual([]);
    });

    it("keeps what provisioning made", () => {
      expect(readFileSync(join(tree, "etc/vmkiln/greeting"), "utf8")).toBe("hello from vmkiln\n");
      expect(readFileSync(join(tree, "etc/vmkiln/built-at"), "utf8")).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(readFileSync(join(tree, "opt/vmkiln-files/conf.d/app.conf"), "utf8").trim()).toBe("answer=42");
    });

    it("reports each generalize operation in manifest.json", () => {
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      expect(m.generalize.length).toBe(15);
      for (const g of m.generalize) expect(g.status, JSON.stringify(g)).toBe("done");
    });
  });

  describe("the OVA (issue 3)", () => {
    const ova = () => join(out, "debian-12-node.ova");
    let ex: string;
    beforeAll(async () => {
      if (res.code !== 0) return;
      ex = join(work, "ova-x");
      execFileSync("mkdir", ["-p", ex]);
      execFileSync("tar", ["-xf", ova(), "-C", ex]);
    });

    it("passes vmkiln verify", async () => {
      const r = await runCli(["verify", ova(), "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
    });

    it("GNU tar lists the OVF first, then the manifest, then the disk; owner 0/0, mode 0644", () => {
      const list = execFileSync("tar", ["--numeric-owner", "-tvf", ova()], { encoding: "utf8" }).trim().split("\n");
      expect(list.map((l) => l.split(/\s+/).pop())).toEqual(["debian-12-node.ovf", "debian-12-node.mf", "debian-12-node-disk1.vmdk"]);
      for (const l of list) expect(l).toMatch(/^-rw-r--r-- 0\/0 /);
    });

    it("the .mf digests match the extracted files and .ova.sha256 passes sha256sum -c", () => {
      const mf = readFileSync(join(ex, "debian-12-node.mf"), "utf8").trim().split("\n");
      expect(mf).toHaveLength(2);
      for (const line of mf) {
        const m = /^SHA256\((.+)\)= ([0-9a-f]{64})$/.exec(line);
        expect(m, line).not.toBeNull();
        const actual = execFileSync("sha256sum", [join(ex, m![1]!)], { encoding: "utf8" }).split(" ")[0];
        expect(actual).toBe(m![2]);
      }
      execFileSync("sha256sum", ["-c", "debian-12-node.ova.sha256"], { cwd: out });
    });

    it("qemu-img reads the VMDK as streamOptimized with the right virtual size", () => {
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(ex, "debian-12-node-disk1.vmdk")], { encoding: "utf8" }));
      expect(info.format).toBe("vmdk");
      expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
      expect(info["virtual-size"]).toBe(4 * 1024 ** 3);
    });

    it("the VMDK is vmkiln's own writer's (issue 19): streamed into the tar, identical to the qcow2, clean, and govmomi imports it", () => {
      expect(logs().some((m) => /^VMDK written in [\d.]+ s: \d+ compressed clusters of the source wrapped/.test(m)), logs().join("\n")).toBe(true);
      expect(logs().some((m) => /VMDK export through qemu-img/.test(m))).toBe(false);
      const vmdk = join(ex, "debian-12-node-disk1.vmdk");
      execFileSync("qemu-img", ["check", "-f", "vmdk", vmdk]);
      const cmp = execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "vmdk", join(out, "debian-12-node.qcow2"), vmdk], { encoding: "utf8" });
      expect(cmp).toContain("Images are identical");
      const g = govmomiImport(vmdk);
      expect(g, g.error).toMatchObject({ ok: true, uploaded: statSync(vmdk).size });
    });

    it("the OVF declares the build's hardware", () => {
      const ovf = readFileSync(join(ex, "debian-12-node.ovf"), "utf8");
      expect(ovf).toContain("vmx-13");
      expect(ovf).toMatch(/<rasd:ResourceSubType>lsilogic<\/rasd:ResourceSubType>/);
      expect(ovf).toMatch(/ovf:size="\d+"/);
    });

    // One `vmkiln test` boot for both artifacts' questions (the qcow2 path is the same code with the
    // disk attached as it is; the interrupted run below starts it on the qcow2): the OVA's disk read in
    // place, the first-boot checks and the node's checks pass, each broken check fails with its line.
    it("vmkiln test boots the OVA's disk in place (no second copy): first-boot and node checks pass, each broken check fails with its exact line (issue 16)", async () => {
      // On a kvm-pvm host, also prove the run-time fallback: let auto pick KVM as if it worked; QEMU
      // then dies under KVM and the driver must restart the guest under TCG, loudly.
      const pvm = existsSync("/sys/module/kvm_pvm") && existsSync("/dev/kvm");
      const junit = join(work, "junit.xml");
      const r = await runCli(["test", ova(), "--checks", NODE_CHECKS, "--checks", BROKEN_CHECKS, "--vars", CHECK_VARS, "--json", "--junit", junit], pvm ? { VMKILN_ASSUME_KVM_OK: "1" } : {});
      expect(r.code, r.stderr.slice(-3000)).toBe(1);
      const logs = r.events.filter((e) => e.type === "log").map((e) => String(e.message));
      if (pvm) expect(logs.join("\n")).toMatch(/KVM cannot run this guest .*restarting it under TCG/);
      // QEMU read the VMDK member where it lies in the archive.
      expect(logs.find((l) => l.startsWith("test "))).toMatch(/\(ova: debian-12-node-disk1\.vmdk at byte \d+; build identity from .*manifest\.json\)/);
      const checks = r.events.filter((e) => e.type === "check").map((e) => ({ outcome: e.outcome, line: e.line, result: e.result as Record<string, unknown> }));
      const of = (suite: string, outcome: string) => checks.filter((e) => e.result.suite === suite && e.outcome === outcome).map((e) => e.line);
      // A fresh seed's first boot of a generalized image: everything regenerated, nothing of the build.
      expect(of("first-boot", "fail")).toEqual([]);
      expect(of("first-boot", "pass").map((l) => String(l).split(": ").slice(0, 3).join(": "))).toEqual(FIRST_BOOT_PASSES);
      expect(of(NODE_CHECKS, "fail")).toEqual([]);
      expect(of(NODE_CHECKS, "pass")).toHaveLength(NODE_PROPERTIES);
      if (JSON.stringify(of(BROKEN_CHECKS, "fail")) !== JSON.stringify(BROKEN_LINES)) console.error(JSON.stringify(of(BROKEN_CHECKS, "fail"), null, 2));
      expect(of(BROKEN_CHECKS, "fail")).toEqual(BROKEN_LINES);
      expect(r.events.find((e) => e.type === "test-end")).toMatchObject({ ok: false });
      const xml = readFileSync(junit, "utf8");
      expect(xml).toMatch(new RegExp(`<testsuites name="vmkiln test" tests="${checks.length}" failures="${BROKEN_LINES.length}"`));
      const cmdLine = BROKEN_LINES.find((l) => l.startsWith("Command: echo out; echo err >&2; exit 3: exit-status:"))!;
      expect(xml).toContain(`<failure message="${cmdLine.replace(/&/g, "&amp;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")}"`);
      // The test VM is gone, and so is its work dir.
      const dir = /\(work dir (.+)\)$/.exec(String(r.events.find((e) => e.type === "log" && String(e.message).startsWith("test "))?.message))?.[1];
      expect(dir && existsSync(dir)).toBe(false);
    });
  });

  // Issue 18 on this same build (no second VM: the integration tier's time budget): the SBOM the
  // build wrote, the qcow2 pushed to a real registry (Debian's docker-registry on 127.0.0.1, TLS +
  // htpasswd) in both layouts and read back by skopeo, the OVA signed and checked with openssl.
  // output.publish and output.ova.sign run the same code (src/steps/publish.ts, ova-signer.ts).
  describe("handed on: SBOM, registry, signed OVA (issue 18)", () => {
    let reg: TestRegistry | undefined;
    const printed: string[] = [];
    beforeAll(async () => {
      if (res.code !== 0) return;
      reg = await startRegistry();
    }, 60_000);
    afterAll(async () => {
      const password = reg?.password;
      await reg?.cleanup();
      if (password) for (const o of printed) expect(o).not.toContain(password);
    });
    const cli = async (args: string[], env: Record<string, string> = {}) => {
      const r = await runCli(args, env);
      printed.push(r.stdout, r.stderr);
      return r;
    };

    it("the SBOM is SPDX 2.3 (schema-valid), in SHA256SUMS and manifest.json, and lists the guest's Debian packages", () => {
      const file = join(out, "debian-12-node.spdx.json");
      const doc = JSON.parse(readFileSync(file, "utf8"));
      expect(spdxSchemaErrors(doc)).toEqual([]);
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      expect(m.artifacts).toContainEqual(expect.objectContaining({ name: "debian-12-node.spdx.json", format: "spdx", sha256: sha(file) }));
      expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(/^[0-9a-f]{64}  debian-12-node\.spdx\.json$/m);
      const names = new Map<string, { externalRefs: Array<{ referenceLocator: string }> }>(doc.packages.map((p: { name: string }) => [p.name, p]));
      for (const n of ["openssh-server", "cloud-init", "systemd", "dpkg"]) expect(names.has(n), n).toBe(true);
      expect(names.get("dpkg")!.externalRefs[0]!.referenceLocator).toMatch(/^pkg:deb\/debian\/dpkg@[^?]+\?arch=amd64&distro=debian-12$/);
      expect(doc.packages.length).toBeGreaterThan(100);
      expect(doc.documentNamespace).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    });

    it("vmkiln push sends the built qcow2 as a containerDisk and as an OCI artifact; skopeo reads both back byte for byte", async () => {
      const r0 = reg!;
      const qcow2 = join(out, "debian-12-node.qcow2");
      const env = { VMKILN_REGISTRY_USERNAME: r0.user, VMKILN_REGISTRY_PASSWORD: r0.password, REGISTRY_AUTH_FILE: join(work, "no-auth.json") };
      for (const as of ["containerdisk", "artifact"] as const) {
        const r = await cli(["push", out, `oci://${r0.host}/vmkiln/node:${as}`, "--as", as, "--ca-file", r0.caFile, "--json"], env);
        expect(r.code, r.stderr).toBe(0);
        const res1 = JSON.parse(r.stdout.trim().split("\n").pop()!) as { digest: string; pinned: string };
        expect(res1.pinned).toBe(`${r0.host}/vmkiln/node@${res1.digest}`);
        const dest = join(work, `skopeo-${as}`);
        execFileSync("skopeo", ["copy", "--src-cert-dir", r0.certDir, "--src-creds", `${r0.user}:${r0.password}`, `docker://${res1.pinned}`, `dir:${dest}`], { stdio: "pipe" });
        // skopeo's dir: keeps the manifest as the registry served it: its digest is the one pushed.
        expect(`sha256:${sha(join(dest, "manifest.json"))}`).toBe(res1.digest);
        const man = JSON.parse(readFileSync(join(dest, "manifest.json"), "utf8")) as { artifactType?: string; layers: Array<{ digest: string }> };
        const layer = join(dest, man.layers[0]!.digest.slice("sha256:".length));
        if (as === "artifact") {
          expect(man.artifactType).toBe("application/vnd.diskimage.qcow2");
          execFileSync("cmp", [layer, qcow2]);
        } else {
          const ex = join(dest, "x");
          execFileSync("mkdir", ["-p", ex]);
          execFileSync("tar", ["-xf", layer, "-C", ex]);
          execFileSync("cmp", [join(ex, "disk", "debian-12-node.qcow2"), qcow2]);
        }
      }
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      expect(m.published.map((p: { as: string }) => p.as)).toEqual(["containerdisk", "artifact"]);
      // The artifacts themselves are as the build wrote them.
      execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out, stdio: "pipe" });
    });

    it("pack-ova --sign: openssl verifies the .cert's signature of the .mf, vmkiln verify names the signer; a tampered copy fails", async () => {
      const sx = join(work, "sign-x");
      execFileSync("mkdir", ["-p", sx]);
      execFileSync("tar", ["-xf", join(out, "debian-12-node.ova"), "-C", sx]);
      const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "sign.key", "-out", "sign.pem", "-days", "2", "-subj", "/O=vmkiln tests/CN=image signer"]);
      const ova = join(work, "signed.ova");
      const p = await cli(["pack-ova", join(sx, "debian-12-node.ovf"), "-o", ova, "--sign", join(work, "sign.key"), "--cert", join(work, "sign.pem")]);
      expect(p.code, p.stderr).toBe(0);
      expect(execFileSync("tar", ["-tf", ova], { encoding: "utf8" }).trim().split("\n")).toEqual(["debian-12-node.ovf", "debian-12-node.mf", "debian-12-node.cert", "debian-12-node-disk1.vmdk"]);
      const x = join(work, "signed-x");
      execFileSync("mkdir", ["-p", x]);
      execFileSync("tar", ["-xf", ova, "-C", x, "debian-12-node.mf", "debian-12-node.cert"]);
      const cert = readFileSync(join(x, "debian-12-node.cert"), "utf8");
      const sig = /^SHA256\(debian-12-node\.mf\)= ([0-9a-f]+)\n/.exec(cert)![1]!;
      writeFileSync(join(x, "sig.bin"), Buffer.from(sig, "hex"));
      writeFileSync(join(x, "cert.pem"), cert.slice(cert.indexOf("-----BEGIN CERTIFICATE-----")));
      ssl(["x509", "-in", join(x, "cert.pem"), "-pubkey", "-noout", "-out", join(x, "pub.pem")]);
      expect(ssl(["dgst", "-sha256", "-verify", join(x, "pub.pem"), "-signature", join(x, "sig.bin"), join(x, "debian-12-node.mf")])).toMatch(/Verified OK/);
      expect(ssl(["x509", "-in", join(x, "cert.pem"), "-noout", "-fingerprint", "-sha256"])).toBe(ssl(["x509", "-in", "sign.pem", "-noout", "-fingerprint", "-sha256"]));
      const v = await cli(["verify", ova]);
      expect(v.code, v.stdout).toBe(0);
      expect(v.stdout).toMatch(/signed by O=vmkiln tests, CN=image signer \(issuer O=vmkiln tests, CN=image signer, self-signed/);
      // One hex digit of the manifest changed: the signature no longer verifies (and the digest no longer matches).
      const bytes = readFileSync(ova);
      const key = "SHA256(debian-12-node-disk1.vmdk)= ";
      const at = bytes.indexOf(Buffer.from(key)) + key.length;
      bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61;
      writeFileSync(join(work, "tampered.ova"), bytes);
      const t = await cli(["verify", join(work, "tampered.ova"), "--json"]);
      expect(t.code).toBe(1);
      const codes = (JSON.parse(t.stdout) as { findings: Array<{ code: string }> }).findings.map((f) => f.code);
      expect(codes).toEqual(expect.arrayContaining(["SIGNATURE_INVALID", "MF_DIGEST_MISMATCH"]));
    });
  });

  it("manifest.json records the build's identity as the build saw it (issue 16)", () => {
    const buildMachineId = /machine-id ([0-9a-f]{32})/.exec(outputLines().join("\n"))?.[1];
    const buildHostKey = /host key (SHA256:\S+)/.exec(logs().join("\n"))?.[1];
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(m.build_identity).toMatchObject({ machine_id: buildMachineId, host_key_fingerprint: buildHostKey, user: "builder" });
    expect(m.build_identity.host_keys).toContain(buildHostKey);
    expect(m.build_identity.key_fingerprint).toMatch(/^SHA256:/);
    expect(m.build_identity.instance_id).toMatch(/^vmkiln-/);
  });

  it("vmkiln test interrupted while the guest boots leaves no VM, work dir or journal (issue 16)", async () => {
    const run = startCli(["test", join(out, "debian-12-node.qcow2"), "--json"], { VMKILN_STATE_DIR: join(work, "state") });
    const first = await run.waitForEvent((e) => e.type === "log" && String(e.message).startsWith("test "), 60_000);
    const [, testId, dir] = /^test (\S+): .*\(work dir (.+)\)$/.exec(String(first.message))!;
    await run.waitForEvent((e) => e.type === "step-start" && e.step === "wait for ssh", 120_000);
    expect(qemuProcesses(testId!)).toHaveLength(1);
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    expect(qemuProcesses(testId!)).toEqual([]);
    expect(existsSync(dir!)).toBe(false);
    expect(readdirSync(join(work, "state", "journal")).filter((n) => n.startsWith(testId!))).toEqual([]);
  });
});
