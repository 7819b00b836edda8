// Signed OVAs (issue 18 item 3): keys and certificates made by openssl here; the .cert member is
// checked by openssl itself (dgst -verify over the extracted .mf), by vmkiln verify, and tampering
// with the manifest or a disk fails with a named finding.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOvf } from "../../../src/artifact/ovf.js";
import { writeOva } from "../../../src/artifact/ova.js";
import { checkSignature, loadSigner, type OvaSigner } from "../../../src/artifact/ova-sign.js";
import { verifyOva } from "../../../src/artifact/verify-ova.js";
import { sha256Hex } from "../../../src/artifact/digest.js";
import { packOvaCommand } from "../../../src/cli/pack-ova.js";
import { verifyCommand } from "../../../src/cli/verify.js";
import { UserError } from "../../../src/errors.js";
import { bus, sh, tmp } from "./helpers.js";

const t = tmp("vmkiln-sign-");
const signal = new AbortController().signal;
const f = (n: string) => join(t.dir, n);

function openssl(args: string[], cwd = t.dir): string {
  return execFileSync("openssl", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function makeCa(): void {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vmkiln test CA"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out", "signer.csr", "-subj", "/O=vmkiln tests/CN=image publisher"]);
  openssl(["x509", "-req", "-in", "signer.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "signer.pem", "-days", "2"]);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "other.key", "-out", "other.pem", "-days", "2", "-subj", "/CN=someone else"]);
  // An encrypted copy of the signer's key.
  openssl(["pkcs8", "-topk8", "-in", "signer.key", "-out", "signer-enc.key", "-passout", "pass:s3cret-passphrase", "-v2", "aes-256-cbc"]);
}

async function makeOva(out: string, sign: OvaSigner | undefined): Promise<void> {
  const disk = Buffer.alloc(70_000, 7);
  disk.write("KDMV", 0);
  writeFileSync(f("d-disk1.vmdk"), disk);
  const ovfXml = buildOvf({ name: "d", cpus: 1, memoryMiB: 256, firmware: "bios", osType: "linux", disks: [{ fileName: "d-disk1.vmdk", fileSize: disk.length, capacityBytes: 1 << 20 }] });
  await writeOva({ out, ovfName: "d.ovf", ovfXml, disks: [{ name: "d-disk1.vmdk", path: f("d-disk1.vmdk"), sha256: sha256Hex(disk), size: disk.length }], events: bus().events, signal, sign });
}

let signer: OvaSigner;
beforeAll(async () => {
  makeCa();
  signer = await loadSigner({ keyFile: f("signer.key"), certificateFile: f("signer.pem") });
  await makeOva(f("signed.ova"), signer);
});
afterAll(() => t.cleanup());

describe("a signed OVA", () => {
  it("has the .cert member right after the manifest, before the disk", () => {
    expect(sh("tar", ["-tf", f("signed.ova")]).trim().split("\n")).toEqual(["d.ovf", "d.mf", "d.cert", "d-disk1.vmdk"]);
  });

  it("is verified by openssl: the first line signs SHA-256 of the .mf with the certificate's key", () => {
    const x = f("x");
    sh("mkdir", ["-p", x]);
    sh("tar", ["-xf", f("signed.ova"), "-C", x]);
    const cert = readFileSync(join(x, "d.cert"), "utf8");
    const m = /^SHA256\(d\.mf\)= ([0-9a-f]+)\n(-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\n)$/.exec(cert);
    expect(m, cert).not.toBeNull();
    writeFileSync(join(x, "sig.bin"), Buffer.from(m![1]!, "hex"));
    writeFileSync(join(x, "embedded.pem"), m![2]!);
    openssl(["x509", "-in", "embedded.pem", "-pubkey", "-noout", "-out", "pub.pem"], x);
    expect(openssl(["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "d.mf"], x)).toMatch(/Verified OK/);
    // The certificate embedded is the signer's, and it chains to the CA.
    expect(openssl(["verify", "-CAfile", f("ca.pem"), join(x, "embedded.pem")])).toMatch(/OK/);
    // ...and openssl refuses the signature over a changed manifest.
    writeFileSync(join(x, "d.mf"), readFileSync(join(x, "d.mf"), "utf8").replace(/= ([0-9a-f])/, (_a, c: string) => `= ${c === "0" ? "1" : "0"}`));
    expect(() => openssl(["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "d.mf"], x)).toThrow();
  });

  it("passes vmkiln verify, which reports the signer (and the CA it chains to with --ca-file)", async () => {
    const r = await verifyOva(f("signed.ova"), { signal });
    expect(r.findings).toEqual([]);
    expect(r.signer).toMatchObject({ subject: "O=vmkiln tests, CN=image publisher", issuer: "CN=vmkiln test CA", selfSigned: false });
    const lines: string[] = [];
    const code = await verifyCommand(f("signed.ova"), { caFile: f("ca.pem") }, { out: (l) => lines.push(l), err: () => {}, events: bus().events, signal });
    expect(code).toBe(0);
    expect(lines.join("\n")).toMatch(/signed by O=vmkiln tests, CN=image publisher \(issuer CN=vmkiln test CA, chains to the given CA/);
    expect(lines.at(-1)).toMatch(/OK .*signature verified/);
    const other = await verifyOva(f("signed.ova"), { signal, trustedPem: readFileSync(f("other.pem"), "utf8") });
    expect(other.findings.map((x) => x.code)).toEqual(["CERT_UNTRUSTED"]);
  });

  it("a changed byte in the disk fails verify (the .mf digest), a changed .mf fails the signature", async () => {
    const ova = readFileSync(f("signed.ova"));
    const diskAt = ova.indexOf(Buffer.from("KDMV"));
    const diskByte = Buffer.from(ova);
    diskByte[diskAt + 1000] = diskByte[diskAt + 1000]! ^ 0xff;
    writeFileSync(f("tampered-disk.ova"), diskByte);
    const r1 = await verifyOva(f("tampered-disk.ova"), { signal });
    expect(r1.ok).toBe(false);
    expect(r1.findings.map((x) => x.code)).toContain("MF_DIGEST_MISMATCH");

    // Rewrite the .mf's disk line (same length) as someone swapping the disk would.
    const text = ova.toString("latin1");
    const at = text.indexOf("SHA256(d-disk1.vmdk)= ") + "SHA256(d-disk1.vmdk)= ".length;
    const mfByte = Buffer.from(ova);
    mfByte[at] = mfByte[at] === 0x30 ? 0x31 : 0x30;
    writeFileSync(f("tampered-mf.ova"), mfByte);
    const r2 = await verifyOva(f("tampered-mf.ova"), { signal });
    expect(r2.findings.map((x) => x.code)).toEqual(expect.arrayContaining(["SIGNATURE_INVALID", "MF_DIGEST_MISMATCH"]));
    const lines: string[] = [];
    expect(await verifyCommand(f("tampered-mf.ova"), {}, { out: (l) => lines.push(l), err: () => {}, events: bus().events, signal })).toBe(1);
    expect(lines.join("\n")).toMatch(/SIGNATURE_INVALID: d\.cert: the signature over d\.mf does not verify/);
  });

  it("a .cert signed by another key fails; a garbled one is reported, not thrown", () => {
    const mf = Buffer.from("SHA256(a)= " + "0".repeat(64) + "\n");
    const otherSigner = sh("openssl", ["x509", "-in", f("other.pem")]);
    const forged = `SHA256(d.mf)= ${"ab".repeat(256)}\n${otherSigner}`;
    expect(checkSignature({ mfName: "d.mf", mf, certName: "d.cert", cert: Buffer.from(forged) }).findings.map((x) => x.code)).toEqual(["SIGNATURE_INVALID"]);
    expect(checkSignature({ mfName: "d.mf", mf, certName: "d.cert", cert: Buffer.from("garbage") }).findings.map((x) => x.code)).toEqual(["CERT_SYNTAX"]);
    expect(checkSignature({ mfName: "d.mf", mf, certName: "d.cert", cert: Buffer.from(`SHA256(d.mf)= ab\nno pem`) }).findings.map((x) => x.code)).toEqual(["CERT_MISSING"]);
    expect(checkSignature({ mfName: "x.mf", mf, certName: "d.cert", cert: Buffer.from(forged) }).findings.map((x) => x.code)).toContain("CERT_TARGET");
    expect(checkSignature({ mfName: "d.mf", mf, certName: "d.cert", cert: Buffer.from(forged), now: Date.parse("2100-01-01") }).findings.map((x) => x.code)).toContain("CERT_EXPIRED");
  });
});

describe("keys", () => {
  const err = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return e as UserError;
    }
    throw new Error("expected an error");
  };

  it("an encrypted key opens with its passphrase and fails clearly without it, never echoing it", async () => {
    const ok = await loadSigner({ keyFile: f("signer-enc.key"), certificateFile: f("signer.pem"), passphrase: "s3cret-passphrase" });
    expect(ok.certificate.subject).toMatch(/image publisher/);
    const none = await err(loadSigner({ keyFile: f("signer-enc.key"), certificateFile: f("signer.pem"), field: "output.ova.sign" }));
    expect(none).toBeInstanceOf(UserError);
    expect(none.message).toMatch(/^output\.ova\.sign\.key: .*signer-enc\.key: the key is encrypted: set VMKILN_OVA_KEY_PASSPHRASE/);
    const wrong = await err(loadSigner({ keyFile: f("signer-enc.key"), certificateFile: f("signer.pem"), passphrase: "not-it-at-all" }));
    expect(wrong.message).toMatch(/passphrase does not open it/);
    expect(wrong.message).not.toContain("not-it-at-all");
  });

  it("a certificate that is not the key's, a missing file and a non-PEM file are refused by name", async () => {
    expect((await err(loadSigner({ keyFile: f("signer.key"), certificateFile: f("other.pem") }))).message).toMatch(/certificate in .*other\.pem is not for the key/);
    expect((await err(loadSigner({ keyFile: f("nope.key"), certificateFile: f("signer.pem") }))).message).toMatch(/sign\.key: cannot read .*nope\.key: no such file$/);
    // A device is not read (util/small-file.ts): /dev/zero used to fill a 512 MB string first.
    expect((await err(loadSigner({ keyFile: "/dev/zero", certificateFile: f("signer.pem") }))).message).toBe("sign.key: /dev/zero is not a regular file");
    expect((await err(loadSigner({ keyFile: f("signer.pem"), certificateFile: f("signer.pem") }))).message).toMatch(/not a PEM private key/);
    expect((await err(loadSigner({ keyFile: f("signer.key"), certificateFile: f("signer.key") }))).message).toMatch(/holds no PEM certificate/);
  });

  it("pack-ova --sign signs a repacked OVF (and wants --cert with it)", async () => {
    const dir = f("ovfdir");
    sh("mkdir", ["-p", dir]);
    sh("tar", ["-xf", f("signed.ova"), "-C", dir]);
    sh("rm", [join(dir, "d.cert")]);
    const io = { out: () => {}, err: () => {}, events: bus().events, signal };
    expect(await packOvaCommand(join(dir, "d.ovf"), { output: f("repacked.ova"), sign: f("signer-enc.key"), cert: f("signer.pem"), passphraseFile: writePass() }, io)).toBe(0);
    const r = await verifyOva(f("repacked.ova"), { signal });
    expect(r.findings).toEqual([]);
    expect(r.signer?.subject).toMatch(/image publisher/);
    await expect(packOvaCommand(join(dir, "d.ovf"), { output: f("x.ova"), sign: f("signer.key") }, io)).rejects.toThrow(/--sign <key.pem> and --cert/);
  });
});

function writePass(): string {
  writeFileSync(f("pass.txt"), "s3cret-passphrase\n");
  return f("pass.txt");
}
