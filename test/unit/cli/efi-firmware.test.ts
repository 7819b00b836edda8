// firmware: efi with an OVMF pair that cannot work is bad input: `vmkiln build` stops with exit 2
// before it fetches, writes or boots anything.
import { mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";

const IMAGE = fileURLToPath(new URL("../../fixtures/templates/good/images/fixture.qcow2", import.meta.url));

async function cli(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const stream = (f: (s: string) => void) => ({ write: (s: string) => (f(s), true), isTTY: false }) as unknown as NodeJS.WriteStream;
  const code = await main(argv, { stdout: stream((s) => (stdout += s)), stderr: stream((s) => (stderr += s)) });
  return { code, stdout, stderr };
}

describe("vmkiln build with firmware: efi and a bad OVMF pair", () => {
  let dir: string;
  const prevState = process.env.VMKILN_STATE_DIR;
  const prevTmp = process.env.VMKILN_TMPDIR;
  const prevXdg = process.env.XDG_CONFIG_HOME;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-efi-cli-"));
    process.env.VMKILN_STATE_DIR = join(dir, "state");
    process.env.VMKILN_TMPDIR = join(dir, "tmp");
    // A per-user firmware descriptor (~/.config/qemu/firmware) describing a Secure Boot build in
    // this directory, and a plain one: what the system says a named pair is.
    process.env.XDG_CONFIG_HOME = join(dir, "config");
    await mkdir(join(dir, "config/qemu/firmware"), { recursive: true });
    for (const [name, size] of [["SB_CODE.fd", 3653632], ["SB_VARS.fd", 540672], ["PLAIN_CODE.fd", 3653632], ["PLAIN_VARS.fd", 540672]] as const) {
      await writeFile(join(dir, name), "");
      await truncate(join(dir, name), size);
    }
    const descriptor = (code: string, vars: string, features: string[]) =>
      JSON.stringify({
        "interface-types": ["uefi"],
        mapping: { device: "flash", executable: { filename: join(dir, code), format: "raw" }, "nvram-template": { filename: join(dir, vars), format: "raw" } },
        targets: [{ architecture: "x86_64", machines: ["pc-q35-*"] }],
        features,
      });
    await writeFile(join(dir, "config/qemu/firmware/10-sb.json"), descriptor("SB_CODE.fd", "SB_VARS.fd", ["enrolled-keys", "requires-smm", "secure-boot"]));
    await writeFile(join(dir, "config/qemu/firmware/20-plain.json"), descriptor("PLAIN_CODE.fd", "PLAIN_VARS.fd", ["acpi-s3"]));
    await symlink("PLAIN_CODE.fd", join(dir, "PLAIN_CODE.qcow2"));
    await symlink("PLAIN_CODE.fd", join(dir, "ALIAS.qcow2"));
    // A 4 MiB build's CODE with a 2 MiB build's VARS: OVMF hangs on such a pair instead of failing.
    await writeFile(join(dir, "OVMF_CODE_4M.fd"), "");
    await truncate(join(dir, "OVMF_CODE_4M.fd"), 3653632);
    await writeFile(join(dir, "OVMF_VARS.fd"), "");
    await truncate(join(dir, "OVMF_VARS.fd"), 131072);
    const template = [
      "name: t",
      "source:",
      `  cloud_image: { path: ${JSON.stringify(IMAGE)}, checksum: none }`,
      "drivers:",
      "  qemu: { firmware: efi, efi_firmware_code: ./OVMF_CODE_4M.fd, efi_firmware_vars: ./OVMF_VARS.fd }",
      "output: { directory: ./out }",
    ].join("\n");
    await writeFile(join(dir, "t.yaml"), template + "\n");
    const variant = (qemu: string) => template.replace(/^  qemu: .*$/m, `  qemu: ${qemu}`) + "\n";
    await writeFile(join(dir, "sb-on-plain.yaml"), variant("{ firmware: efi, efi_firmware_code: ./PLAIN_CODE.fd, efi_firmware_vars: ./PLAIN_VARS.fd, efi_secure_boot: true }"));
    await writeFile(join(dir, "smm-without-sb.yaml"), variant("{ firmware: efi, efi_firmware_code: ./SB_CODE.fd, efi_firmware_vars: ./SB_VARS.fd }"));
    await writeFile(join(dir, "one-file-twice.yaml"), variant("{ firmware: efi, efi_firmware_code: ./PLAIN_CODE.qcow2, efi_firmware_vars: ./ALIAS.qcow2 }"));
  });
  afterAll(async () => {
    if (prevState === undefined) delete process.env.VMKILN_STATE_DIR;
    else process.env.VMKILN_STATE_DIR = prevState;
    if (prevTmp === undefined) delete process.env.VMKILN_TMPDIR;
    else process.env.VMKILN_TMPDIR = prevTmp;
    if (prevXdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = prevXdg;
    await rm(dir, { recursive: true, force: true });
  });

  it("exits 2 naming both fields and files, no stack, nothing created", async () => {
    const r = await cli(["build", join(dir, "t.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmkiln: error: drivers\.qemu\.efi_firmware_code and efi_firmware_vars do not belong together: .*OVMF_CODE_4M\.fd \(3653632 bytes\) and .*OVMF_VARS\.fd \(131072 bytes\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // No output dir and no build dir.
    const entries = await readdir(dir);
    expect(entries).not.toContain("out");
    expect(entries).not.toContain("tmp");
  });

  it.each([
    ["sb-on-plain.yaml", /^vmkiln: error: drivers\.qemu\.efi_secure_boot: \S*PLAIN_CODE\.fd is not a Secure Boot build with SMM \(\S*20-plain\.json lists: acpi-s3\)$/m],
    ["smm-without-sb.yaml", /^vmkiln: error: drivers\.qemu\.efi_firmware_code: \S*SB_CODE\.fd needs SMM \(\S*10-sb\.json says requires-smm\), which only efi_secure_boot: true turns on$/m],
    ["one-file-twice.yaml", /^vmkiln: error: drivers\.qemu\.efi_firmware_code and efi_firmware_vars do not belong together: CODE and VARS are the same file$/m],
  ])("%s: exit 2, one line naming the field, nothing created", async (file, message) => {
    const r = await cli(["build", join(dir, file)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split("\n").filter((l) => l.startsWith("vmkiln: error:"))).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const entries = await readdir(dir);
    expect(entries).not.toContain("out");
    expect(entries).not.toContain("tmp");
  });
});
