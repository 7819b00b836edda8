// firmware: efi with an OVMF pair that cannot work is bad input: `vmkiln build` stops with exit 2
// before it fetches, writes or boots anything.
import { mkdtemp, readdir, rm, truncate, writeFile } from "node:fs/promises";
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
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-efi-cli-"));
    process.env.VMKILN_STATE_DIR = join(dir, "state");
    process.env.VMKILN_TMPDIR = join(dir, "tmp");
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
  });
  afterAll(async () => {
    if (prevState === undefined) delete process.env.VMKILN_STATE_DIR;
    else process.env.VMKILN_STATE_DIR = prevState;
    if (prevTmp === undefined) delete process.env.VMKILN_TMPDIR;
    else process.env.VMKILN_TMPDIR = prevTmp;
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
});
