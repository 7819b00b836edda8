// `vmkiln test` on bad input: exit 2 with one line naming the option, file or field, no stack, and
// nothing booted (every case fails before a VM could start: the artifact named does not even exist,
// or the options are checked before it is read).
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../../helpers/main-cli.js";


const dir = mkdtempSync(join(tmpdir(), "vmkiln-test-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const w = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
// A file that is not an image: only reached when every option passed.
const notImage = w("disk.qcow2", "not an image");

describe("vmkiln test: bad input is exit 2 before anything boots", () => {
  const junitExisting = w("results.xml", "<mine/>");
  mkdirSync(join(dir, "sub"));
  const cases: Array<[string[], RegExp]> = [
    [["--driver", "virtualbox"], /^vmkiln: error: --driver virtualbox: vmkiln test boots images with qemu/],
    [["--skip", "bogus"], /^vmkiln: error: --skip bogus: not a first-boot check \(machine_id, /],
    [["--sleep", "0s"], /^vmkiln: error: --sleep: must be more than 0$/m],
    [["--timeout", "0s"], /^vmkiln: error: --timeout: must be more than 0$/m],
    [["--retry-timeout", "soon"], /^vmkiln: error: --retry-timeout: invalid duration "soon"/],
    [["--disk-size", "big"], /^vmkiln: error: --disk-size: invalid size "big"/],
    [["--junit", join(dir, "nope", "r.xml")], new RegExp(`^vmkiln: error: --junit .*r\\.xml: no directory ${join(dir, "nope")}$`, "m")],
    [["--junit", junitExisting], /^vmkiln: error: --junit .*results\.xml: exists and is not an earlier vmkiln test report; vmkiln does not overwrite it$/m],
    [["--junit", join(dir, "sub")], /^vmkiln: error: --junit .*sub: exists and is not an earlier vmkiln test report/m],
    [["--checks", join(dir, "missing.yaml")], /^vmkiln: error: .*missing\.yaml: no such file$/m],
    [["--vars", join(dir, "missing-vars.yaml")], /^vmkiln: error: --vars .*missing-vars\.yaml: no such file$/m],
    [["--checks", w("typo.yaml", "service:\n  ssh:\n    runing: true\n")], /^vmkiln: error: .*typo\.yaml: service\.ssh\.runing: unknown attribute for a service resource/m],
    [["--checks", w("sprig.yaml", "command:\n  '{{ .Vars.x | quote }}':\n    exit-status: 0\n")], /^vmkiln: error: .*sprig\.yaml: template: function "quote" is not supported by vmkiln/m],
    [["--checks", w("semver.yaml", "package:\n  bash:\n    installed: true\n    versions: {semver-constraint: '>5'}\n")], /^vmkiln: error: .*semver\.yaml: package\.bash\.versions.*semver-constraint/m],
    [[], /^vmkiln: error: .*disk\.qcow2: not a qcow2, VMDK or OVA \(by its content\), nor a raw image named \*\.raw or \*\.img$/m],
  ];
  for (const [args, re] of cases) {
    it(`${args.join(" ") || "(not an image)"}`, async () => {
      const r = await cli(["test", notImage, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr.trim().split("\n").filter((l) => l.startsWith("vmkiln: error:"))).toHaveLength(1);
    });
  }
});

describe("vmkiln build with a test: section: its gossfiles and formats are checked before the build", () => {
  const tmpl = (test: string) =>
    w("t.yaml", `name: x\nsource: {cloud_image: {path: ${notImage}, checksum: none, format: raw}}\ndrivers: {qemu: {}}\nssh: {username: b}\noutput: {directory: ${join(dir, "never")}, formats: [qcow2]}\ntest: ${test}\n`);
  it("a missing gossfile: exit 2 naming it, nothing made", async () => {
    const r = await cli(["build", tmpl(`{checks: [${join(dir, "absent.yaml")}]}`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmkiln: error: .*absent\.yaml: no such file$/m);
  });
  it("a bad gossfile: exit 2 naming the file and key", async () => {
    const r = await cli(["build", tmpl(`{checks: [${w("bad-key.yaml", "port:\n  tcp:22:\n    listen: true\n")}]}`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad-key\.yaml: port\.tcp:22\.listen: unknown attribute for a port resource/);
  });
  it("a format the build does not export: exit 2", async () => {
    const r = await cli(["build", tmpl("{formats: [ova]}")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmkiln: error: test\.formats: this build exports no ova \(output\.formats: qcow2\)$/m);
    expect(existsSync(join(dir, "never"))).toBe(false);
  });
});
