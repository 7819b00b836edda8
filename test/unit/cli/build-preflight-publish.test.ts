// output.ova.sign and output.publish are checked by the prepare step, before anything is fetched or a
// VM boots: a certificate that is not the key's, an encrypted key without its passphrase, a broken
// registry auth file or CA file fail a build at once (exit 2, the field named), where they used to fail
// the export after the whole build. No VM can start here: the failure comes first (and the output
// directory is never made).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-preflight-pub-"));
const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });

function fakeStream() {
  let text = "";
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

async function build(extra: string[], env: Record<string, string> = {}) {
  const t = join(dir, "t.yaml");
  writeFileSync(
    t,
    [
      "name: pre",
      `source: { cloud_image: { path: ${join(dir, "src.qcow2")}, checksum: none, format: qcow2 } }`,
      // Should prepare let it through, the build would stop at once: no guest answers SSH on a blank disk.
      "drivers: { qemu: { memory: 256 } }",
      "ssh: { username: nobody, timeout: 1s }",
      "output:",
      `  directory: ${join(dir, "out")}`,
      "  formats: [qcow2, ova]",
      ...extra,
      "",
    ].join("\n"),
  );
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const out = fakeStream();
  const err = fakeStream();
  const started = Date.now();
  try {
    const code = await main(["build", t], { stdout: out.stream, stderr: err.stream });
    return { code, stderr: err.text(), stdout: out.text(), ms: Date.now() - started };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

beforeAll(() => {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "src.qcow2"), "1M"]);
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "a.key", "-out", "a.pem", "-days", "2", "-subj", "/CN=a"]);
  ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "b.key", "-out", "b.pem", "-days", "2", "-subj", "/CN=b"]);
  ssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-256-cbc", "-pass", "pass:pp-secret-9", "-out", "enc.key"]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("build: signing and publishing are checked in the prepare step", () => {
  it("a certificate that is not the key's: exit 2 at prepare, naming output.ova.sign", async () => {
    const r = await build(["  ova: { sign: { key: ./a.key, certificate: ./b.pem } }"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/output\.ova\.sign/);
    expect(r.stderr).toMatch(/step prepare|prepare/);
    expect(r.stderr).not.toMatch(/fetch source|create vm/);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("an encrypted key without its passphrase: exit 2 at prepare, the passphrase never printed", async () => {
    const r = await build(["  ova: { sign: { key: ./enc.key, certificate: ./a.pem } }"], { VMKILN_OVA_KEY_PASSPHRASE: "wrong-pass-1" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/output\.ova\.sign\.key: .*enc\.key: the key is encrypted and the passphrase does not open it/);
    expect(r.stderr + r.stdout).not.toContain("wrong-pass-1");
  });

  it("a broken registry auth file or a CA file that is not PEM: exit 2 at prepare", async () => {
    const auth = join(dir, "auth.json");
    writeFileSync(auth, JSON.stringify({ auths: { "reg.invalid:5000": { auth: 42 } } }));
    const pub = ["  publish:", '    - { to: "oci://reg.invalid:5000/vm/pre:1", as: artifact }'];
    const r = await build(pub, { REGISTRY_AUTH_FILE: auth });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/auth\.json: auths\["reg\.invalid:5000"\]\.auth must be a string/);
    writeFileSync(join(dir, "notpem.pem"), "hello");
    const r2 = await build(["  publish:", '    - { to: "oci://reg.invalid:5000/vm/pre:1", ca_file: ./notpem.pem }'], { REGISTRY_AUTH_FILE: join(dir, "none.json") });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/--ca-file: .*notpem\.pem holds no PEM certificate/);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });
});
