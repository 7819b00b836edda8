// Issue 18 acceptance on a real build: ONE build of the fixture guest (real QEMU, cloud-init, SSH)
// with qcow2 + ova, the SBOM on (the default), the OVA signed with a certificate openssl made here, and
// output.publish pushing the qcow2 to a real registry (docker-registry on 127.0.0.1, TLS + htpasswd)
// in both layouts. Then: the SBOM validates against the SPDX 2.3 schema and lists the guest's real
// packages; openssl and vmkiln verify the OVA's signature, and a tampered copy fails; skopeo reads
// both pushed images back and their disks equal the qcow2 byte for byte; manifest.json holds the
// digests. Nothing here talks to anything but 127.0.0.1.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuSnapshot } from "../helpers/processes.js";
import { startRegistry, type TestRegistry } from "../helpers/registry.js";
import { spdxSchemaErrors } from "../helpers/spdx.js";

const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe("one build: SBOM, signed OVA, pushed as containerDisk and OCI artifact", () => {
  let reg: TestRegistry;
  let work: string;
  let out: string;
  let res: CliResult;
  const vms = qemuSnapshot();

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    reg = await startRegistry();
    work = mkdtempSync(join(tmpdir(), "vmkiln-publish-"));
    out = join(work, "out");
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "sign.key", "-out", "sign.pem", "-days", "2", "-subj", "/O=vmkiln tests/CN=image signer"], work);
    writeFileSync(
      join(work, "template.yaml"),
      [
        "name: pub",
        "source: { cloud_image: { path: ${env.VMKILN_FIXTURE_IMAGE}, checksum: none, format: qcow2 } }",
        "drivers: { qemu: { cpus: 2, memory: 1024 } }",
        "ssh: { username: builder, timeout: 10m }",
        "provision:",
        "  - shell: { sudo: true, inline: ['echo published > /etc/vmkiln-published'] }",
        `output:`,
        `  directory: ${out}`,
        "  formats: [qcow2, ova]",
        "  ova: { os_type: debian12, sign: { key: ./sign.key, certificate: ./sign.pem } }",
        "  publish:",
        `    - { to: "oci://${reg.host}/vmkiln/pub:cd", as: containerdisk, ca_file: ${reg.caFile} }`,
        `    - { to: "oci://${reg.host}/vmkiln/pub:artifact", as: artifact, ca_file: ${reg.caFile} }`,
        "",
      ].join("\n"),
    );
    res = await runCli(["build", join(work, "template.yaml"), "--json"], {
      VMKILN_FIXTURE_IMAGE: image,
      VMKILN_REGISTRY_USERNAME: reg.user,
      VMKILN_REGISTRY_PASSWORD: reg.password,
    });
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  });

  afterAll(async () => {
    await reg?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  it("builds, with the sbom step before generalize and the publish step after the export", () => {
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const steps = res.events.filter((e) => e.type === "step-end").map((e) => e.step);
    expect(steps).toEqual(["prepare", "fetch source", "ssh key", "cidata", "create vm", "start vm", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export", "publish"]);
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "manifest.json", "pub.ova", "pub.ova.sha256", "pub.qcow2", "pub.spdx.json"]);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out, stdio: "pipe" });
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(/^[0-9a-f]{64}  pub\.spdx\.json$/m);
    // The registry password never reached the build's output.
    expect(res.stdout + res.stderr).not.toContain(reg.password);
  });

  it("the SBOM is SPDX 2.3 (schema-valid) and lists the guest's installed Debian packages", () => {
    const doc = JSON.parse(readFileSync(join(out, "pub.spdx.json"), "utf8"));
    expect(spdxSchemaErrors(doc)).toEqual([]);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(m.artifacts).toContainEqual(expect.objectContaining({ name: "pub.spdx.json", format: "spdx", sha256: sha(join(out, "pub.spdx.json")) }));
    const names = new Map<string, { versionInfo: string; externalRefs: Array<{ referenceLocator: string }> }>(doc.packages.map((p: { name: string }) => [p.name, p]));
    for (const n of ["openssh-server", "cloud-init", "systemd", "dpkg"]) expect(names.has(n), n).toBe(true);
    expect(names.get("dpkg")!.externalRefs[0]!.referenceLocator).toMatch(/^pkg:deb\/debian\/dpkg@[^?]+\?arch=amd64&distro=debian-12$/);
    expect(doc.packages.length).toBeGreaterThan(100);
    expect(doc.documentNamespace).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
  });

  it("the signed OVA: .cert after the manifest, verified by openssl and by vmkiln verify; a tampered copy fails", async () => {
    const ova = join(out, "pub.ova");
    expect(execFileSync("tar", ["-tf", ova], { encoding: "utf8" }).trim().split("\n")).toEqual(["pub.ovf", "pub.mf", "pub.cert", "pub-disk1.vmdk"]);
    const x = join(work, "ova-x");
    mkdirSync(x);
    execFileSync("tar", ["-xf", ova, "-C", x, "pub.mf", "pub.cert"]);
    const cert = readFileSync(join(x, "pub.cert"), "utf8");
    const sig = /^SHA256\(pub\.mf\)= ([0-9a-f]+)\n/.exec(cert)![1]!;
    writeFileSync(join(x, "sig.bin"), Buffer.from(sig, "hex"));
    writeFileSync(join(x, "cert.pem"), cert.slice(cert.indexOf("-----BEGIN CERTIFICATE-----")));
    openssl(["x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem"], x);
    expect(openssl(["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "pub.mf"], x)).toMatch(/Verified OK/);
    expect(openssl(["x509", "-in", "cert.pem", "-noout", "-fingerprint", "-sha256"], x)).toBe(openssl(["x509", "-in", join(work, "sign.pem"), "-noout", "-fingerprint", "-sha256"], x));

    const v = await runCli(["verify", ova]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/signed by O=vmkiln tests, CN=image signer \(issuer O=vmkiln tests, CN=image signer, self-signed/);

    // One byte of the manifest (a digest's hex digit) changed: the signature no longer verifies.
    const bytes = readFileSync(ova);
    const at = bytes.indexOf(Buffer.from("SHA256(pub-disk1.vmdk)= ")) + "SHA256(pub-disk1.vmdk)= ".length;
    bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61;
    writeFileSync(join(work, "tampered.ova"), bytes);
    const t = await runCli(["verify", join(work, "tampered.ova"), "--json"]);
    expect(t.code).toBe(1);
    const codes = (JSON.parse(t.stdout) as { findings: Array<{ code: string }> }).findings.map((f) => f.code);
    expect(codes).toEqual(expect.arrayContaining(["SIGNATURE_INVALID", "MF_DIGEST_MISMATCH"]));
  });

  it("both pushes are in manifest.json, and skopeo reads back disks equal to the qcow2", () => {
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(m.published.map((p: { as: string }) => p.as)).toEqual(["containerdisk", "artifact"]);
    const qcow2 = join(out, "pub.qcow2");
    for (const p of m.published as Array<{ as: string; to: string; digest: string; pinned: string }>) {
      expect(p.pinned).toBe(`${reg.host}/vmkiln/pub@${p.digest}`);
      const dest = join(work, `skopeo-${p.as}`);
      execFileSync("skopeo", ["copy", "--src-cert-dir", reg.certDir, "--src-creds", `${reg.user}:${reg.password}`, `docker://${p.pinned}`, `dir:${dest}`], { stdio: "pipe" });
      const man = JSON.parse(readFileSync(join(dest, "manifest.json"), "utf8")) as { layers: Array<{ digest: string }> };
      // skopeo's dir: names the manifest's digest: it is the one pushed.
      expect(`sha256:${sha(join(dest, "manifest.json"))}`).toBe(p.digest);
      const layer = join(dest, man.layers[0]!.digest.slice("sha256:".length));
      if (p.as === "artifact") execFileSync("cmp", [layer, qcow2]);
      else {
        const ex = join(dest, "x");
        mkdirSync(ex);
        execFileSync("tar", ["-xf", layer, "-C", ex]);
        execFileSync("cmp", [join(ex, "disk", "pub.qcow2"), qcow2]);
      }
    }
  });
});
