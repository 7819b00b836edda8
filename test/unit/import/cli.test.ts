// `vmkiln import` on bad input: exit 2, one line naming the file and (where there is one) the line,
// no stack; and what it writes: never over an existing file without --force, nothing with --strict
// when a field is not mapped.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../helpers/main-cli.js";

const ROUNDTRIP = fileURLToPath(new URL("../../fixtures/packer/roundtrip/qemu-cloud.pkr.hcl", import.meta.url));
const SHA = "sha256:" + "ab".repeat(32);


let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vmkiln-import-cli-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, text);
  return p;
}

function expectBadInput(r: { code: number; stderr: string }, where: RegExp) {
  expect(r.code).toBe(2);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(where);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe("vmkiln import: bad input is exit 2 naming the file and line", () => {
  it("JSON with a syntax error", async () => {
    const p = await file("broken.json", '{\n  "builders": [\n    { "type": "qemu", }\n  ]\n}\n');
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /broken\.json:3:\d+: JSON syntax error: /);
  });

  it("HCL with a syntax error", async () => {
    const p = await file("broken.pkr.hcl", 'source "qemu" "a" {\n  iso_url = \n}\n');
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /broken\.pkr\.hcl:2:\d+: HCL syntax error: /);
  });

  it("a file that is neither JSON nor HCL (YAML)", async () => {
    const p = await file("template.yaml", "builders:\n  - type: qemu\n    iso_url: x\n");
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /template\.yaml:\d+:\d+: HCL syntax error: /);
  });

  it("binary garbage", async () => {
    const p = path.join(dir, "garbage.bin");
    await writeFile(p, Buffer.from([0x00, 0xff, 0x7b, 0x00, 0x13, 0x37]));
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /garbage\.bin:\d+(:\d+)?: (JSON|HCL) syntax error/);
  });

  it("an unknown builder in JSON names its line", async () => {
    const p = await file("unknown.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "x" }, { type: "qemuu" }] }, null, 2));
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /unknown\.json:8: unknown builder type "qemuu"/);
  });

  it("an unknown builder in HCL names its line", async () => {
    const p = await file("unknown.pkr.hcl", '# a comment\n\nsource "qemuu" "a" {\n}\nbuild {\n  sources = ["source.qemuu.a"]\n}\n');
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /unknown\.pkr\.hcl:3: unknown builder type "qemuu"/);
  });

  it("a missing -var-file", async () => {
    const p = await file("ok.json", JSON.stringify({ variables: { a: "1" }, builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA }] }));
    expectBadInput(await cli(["import", p, "-var-file", path.join(dir, "nope.json"), "-o", path.join(dir, "o.yaml")]), /nope\.json: cannot read var file: no such file/);
  });

  it("a -var-file with a syntax error names its line", async () => {
    const p = await file("ok2.json", JSON.stringify({ variables: { a: "1" }, builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA }] }));
    const vf = await file("vars.json", '{\n  "a": "2",\n  "b" 3\n}\n');
    expectBadInput(await cli(["import", p, "-var-file", vf, "-o", path.join(dir, "o.yaml")]), /vars\.json:3:\d+: JSON syntax error/);
  });

  it("a -var for a variable the template does not declare", async () => {
    const p = await file("ok3.json", JSON.stringify({ variables: { a: "1" }, builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA }] }));
    expectBadInput(await cli(["import", p, "-var", "zz=1", "-o", path.join(dir, "o.yaml")]), /variable "zz" is not declared/);
  });

  it("a missing template", async () => {
    expectBadInput(await cli(["import", path.join(dir, "absent.json")]), /absent\.json: cannot read: no such file/);
  });

  it("a template with only builders vmkiln has no driver for", async () => {
    const p = await file("aws.json", JSON.stringify({ builders: [{ type: "amazon-ebs", region: "x" }] }, null, 1));
    expectBadInput(await cli(["import", p, "-o", path.join(dir, "o.yaml")]), /aws\.json:3: no source vmkiln can build \(amazon-ebs: amazon-ebs\)/);
  });

  it("--only naming no source", async () => {
    expectBadInput(await cli(["import", ROUNDTRIP, "--only", "vsphere", "-o", path.join(dir, "o.yaml")]), /--only vsphere: no such source \(have qemu\.debian\)/);
  });
});

describe("vmkiln import: what it writes", () => {
  it("writes the YAML, reports on stdout/stderr, exit 0 with warnings", async () => {
    const p = await file("warn.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", vnc_port_min: 5900 }] }, null, 2));
    const out = path.join(dir, "w", "vmkiln.yaml");
    const r = await cli(["import", p, "-o", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*vmkiln\.yaml \(qemu: qemu from qemu\)/);
    expect(r.stderr).toMatch(/not mapped: builders\[0\]\.vnc_port_min \(line \d+\): vmkiln types keys through QMP/);
    expect(await readFile(out, "utf8")).toMatch(/# Not mapped \(1\)/);
  });

  it("never replaces an existing file without --force", async () => {
    const p = await file("keep.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u" }] }));
    const out = await file("mine.yaml", "name: mine\n");
    const r = await cli(["import", p, "-o", out]);
    expectBadInput(r, /mine\.yaml: already exists \(use --force to replace it\)/);
    expect(await readFile(out, "utf8")).toBe("name: mine\n");
    expect((await cli(["import", p, "-o", out, "--force"])).code).toBe(0);
    expect(await readFile(out, "utf8")).toMatch(/^name: qemu$/m);
  });

  it("--strict: exit 2 and nothing written when a field is not mapped", async () => {
    const p = await file("strict.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", net_bridge: "br0" }] }, null, 2));
    const out = path.join(dir, "strict.yaml");
    const r = await cli(["import", p, "--strict", "-o", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not mapped: builders\[0\]\.net_bridge \(line \d+\): vmkiln uses QEMU user networking/);
    expect(r.stderr).toMatch(/1 Packer field not mapped \(--strict\); nothing written/);
    expect(existsSync(out)).toBe(false);
  });

  it("--strict: exit 0 when everything maps", async () => {
    const out = path.join(dir, "rt", "vmkiln.yaml");
    const r = await cli(["import", ROUNDTRIP, "--strict", "-var", "image=/x.qcow2", "-var", "ssh_key=/k", "-o", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it("--json prints the files and every unmapped field with its line", async () => {
    const p = await file("j.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", net_bridge: "br0" }] }, null, 2));
    const r = await cli(["import", p, "--json", "-o", path.join(dir, "j.yaml")]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { files: Array<{ drivers: string[] }>; not_mapped: Array<{ path: string; line: number }> };
    expect(j.files[0]!.drivers).toEqual(["qemu"]);
    expect(j.not_mapped).toEqual([{ path: "builders[0].net_bridge", why: "vmkiln uses QEMU user networking", line: 8 }]);
  });

  it("several sources: one file each, named after the source", async () => {
    const b = { iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", disk_size: "10G" };
    const p = await file("two.json", JSON.stringify({ builders: [{ type: "qemu", name: "one", ...b }, { type: "qemu", name: "two", ...b, cpus: 4 }] }));
    const r = await cli(["import", p, "-o", path.join(dir, "two", "vmkiln.yaml")]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, "two", "vmkiln.one.yaml")) && existsSync(path.join(dir, "two", "vmkiln.two.yaml"))).toBe(true);
  });

  it("a qemu and a VirtualBox source from one ISO: one template each (their artifacts differ)", async () => {
    const b = { iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", disk_size: 10240, cpus: 2, memory: 2048 };
    const p = await file("pair.json", JSON.stringify({ builders: [{ type: "qemu", ...b }, { type: "virtualbox-iso", guest_additions_mode: "disable", ...b }] }));
    const r = await cli(["import", p, "-o", path.join(dir, "pair", "vmkiln.yaml")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/vmkiln\.qemu\.yaml \(qemu: qemu from qemu\)/);
    expect(r.stdout).toMatch(/vmkiln\.virtualbox-iso\.yaml \(virtualbox-iso: virtualbox from virtualbox-iso\)/);
  });


  it("-o naming a directory writes vmkiln.yaml in it", async () => {
    const p = await file("d.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u" }] }));
    const r = await cli(["import", p, "-o", path.join(dir, "adir") + "/"]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, "adir", "vmkiln.yaml"))).toBe(true);
  });

  it("never writes over the Packer template, even with --force", async () => {
    const p = await file("self.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u" }] }));
    const before = await readFile(p, "utf8");
    expectBadInput(await cli(["import", p, "-o", p, "--force"]), /self\.json: is an input of this import; choose another -o/);
    expect(await readFile(p, "utf8")).toBe(before);
  });

  it("a sensitive variable's value given at import is neither written nor computed into the template", async () => {
    const p = await file(
      "secret.json",
      JSON.stringify({
        variables: { pw: null, user: "u" },
        "sensitive-variables": ["pw"],
        builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "{{user `user`}}", ssh_password: "{{user `pw`}}", vm_name: "{{ upper (user `pw`) }}" }],
      }, null, 2),
    );
    const out = path.join(dir, "secret.yaml");
    const r = await cli(["import", p, "-var", "pw=hunter2", "-o", out]);
    expect(r.code, r.stderr).toBe(0);
    const yaml = await readFile(out, "utf8");
    expect(yaml).not.toMatch(/hunter2|HUNTER2/i);
    expect(r.stderr + r.stdout).not.toMatch(/hunter2/i);
    expect(yaml).toMatch(/password: \$\{var\.pw\}/);
    expect(r.stderr).toMatch(/not mapped: builders\[0\]\.vm_name \(line \d+\): user variable "pw" is sensitive/);
  });

  it("HCL2 with a *.pkrvars.hcl -var-file, then -var, over the defaults (Packer's order)", async () => {
    const p = await file(
      "v.pkr.hcl",
      `variable "mem" {\n  default = 1024\n}\nvariable "cpus" {\n  default = 1\n}\nvariable "names" {\n  type = list(string)\n  default = ["a"]\n}\nsource "qemu" "a" {\n  iso_url = "https://x.invalid/a.iso"\n  iso_checksum = "${SHA}"\n  ssh_username = "u"\n  disk_size = "10G"\n  memory = var.mem\n  cpus = var.cpus\n  vm_name = join("-", var.names)\n}\nbuild {\n  sources = ["source.qemu.a"]\n}\n`,
    );
    const vf = await file("prod.pkrvars.hcl", 'mem = 4096\ncpus = 2\nnames = ["x", "y"]\n');
    const out = path.join(dir, "v.yaml");
    const r = await cli(["import", p, "-var-file", vf, "-var", "cpus=8", "-o", out]);
    expect(r.code, r.stderr).toBe(0);
    const yaml = await readFile(out, "utf8");
    expect(yaml).toMatch(/^  mem: "4096"$/m);
    expect(yaml).toMatch(/^  cpus: "8"$/m);
    expect(yaml).toMatch(/memory: \$\{var\.mem\}/);
    expect(yaml).toMatch(/basename: x-y/);
  });

  it("boot_command as one long string (not a list) is typed as written", async () => {
    const long = "<esc><wait> linux inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg inst.text <enter>";
    const p = await file("long.json", JSON.stringify({ builders: [{ type: "qemu", iso_url: "https://x.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", boot_command: long, http_directory: "." }] }));
    const out = path.join(dir, "long.yaml");
    expect((await cli(["import", p, "-o", out])).code).toBe(0);
    expect(await readFile(out, "utf8")).toContain(`command:\n    - ${long}\n`);
    expect((await cli(["validate", out])).code).toBe(0);
  });
});
