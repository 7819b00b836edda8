// `vmkiln validate`: warnings for what is valid but most likely a mistake (an unknown `<key>` in a
// boot command), and `--json` as one JSON object (issue 12).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../../src/build.js";
import { cli } from "../../helpers/main-cli.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { parseBootCommand } from "../../../src/bootcommand/parse.js";
import { loadTemplate } from "../../../src/template/load.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const ISO = path.join(GOOD, "images/installer-iso.stub");
const IMAGE = path.join(GOOD, "images/fixture.qcow2");
const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-validate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}


const isoTemplate = (command: string[]) =>
  `name: i\nsource: { iso: { path: ${ISO}, checksum: none } }\ndrivers: { qemu: { disk_size: 4G } }\nboot:\n  command: ${JSON.stringify(command)}\n`;

describe("unknown <key> in a boot command", () => {
  it("the parser reports each one with its element and column (it was typed silently)", () => {
    const seen: unknown[] = [];
    const events = parseBootCommand(["a<enter>", "b<enterr>c<wiat5>"], { onUnknownToken: (u) => seen.push(u) });
    expect(seen).toEqual([
      { element: 1, column: 2, token: "<enterr>" },
      { element: 1, column: 11, token: "<wiat5>" },
    ]);
    expect(events.filter((e) => e.kind === "press" && e.key === "enter")).toHaveLength(1); // still typed as Packer does
  });

  it.each([
    ["<enterr>", "<enterr> (column 5) is not a key or a wait: it will be typed as text (did you mean <enter>?)"],
    ["<wiat5>", "<wiat5> (column 5) is not a key or a wait: it will be typed as text (did you mean <wait5>?)"],
    ["<leftCtrlOnn>", "<leftCtrlOnn> (column 5) is not a key or a wait: it will be typed as text (did you mean <leftCtrlOn>?)"],
    ["<retrun>", "<retrun> (column 5) is not a key or a wait: it will be typed as text (did you mean <return>?)"],
    ["<wait5x>", "<wait5x> (column 5) is not a key or a wait: it will be typed as text: a wait is <wait>, <wait5> (seconds) or <wait1m30s> (a Go duration)"],
    ["<hostname>", "<hostname> (column 5) is not a key or a wait: it will be typed as text"],
  ])("%s: a warning at the field path, with a did-you-mean where close", async (token, message) => {
    const spec = await loadTemplate(file("w.yaml", isoTemplate(["<esc>", `abcd${token}`])), { env: {} });
    expect(spec.warnings).toEqual([{ path: "boot.command[1]", message, code: "BOOT_COMMAND_UNKNOWN_KEY" }]);
  });

  it("validate prints the warning and still passes", async () => {
    const r = await cli(["validate", file("w2.yaml", isoTemplate(["<enterr>"]))]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: ok \(i: qemu → qcow2\)\n$/);
    expect(r.stderr).toBe("vmkiln: warning: boot.command[0]: <enterr> (column 1) is not a key or a wait: it will be typed as text (did you mean <enter>?)\n");
  });

  it("a template with errors prints its warnings after the problems", async () => {
    const r = await cli(["validate", file("w3.yaml", isoTemplate(["<enterr>"]) + "ssh: { port: 0 }\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmkiln: error: .*ssh\.port: .*\nvmkiln: warning: boot\.command\[0\]: <enterr>/);
  });

  it("a build logs it before the first step", async () => {
    const spec = await loadTemplate(file("w4.yaml", isoTemplate(["<enterr>"])), { env: {} });
    const events = new EventBus();
    const seen: BuildEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const driver = { name: "qemu", capabilities: { sources: ["iso"], keystrokes: true, exports: ["qcow2"] }, plan: () => [] } as unknown as Driver;
    const prev = process.env.VMKILN_STATE_DIR;
    process.env.VMKILN_STATE_DIR = dir;
    try {
      const r = await build({ spec, driverFactory: () => driver, events, signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false } });
      expect(r.ok).toBe(true);
    } finally {
      if (prev === undefined) delete process.env.VMKILN_STATE_DIR;
      else process.env.VMKILN_STATE_DIR = prev;
    }
    expect(seen.find((e) => e.type === "log" && e.level === "warn")).toMatchObject({
      source: "template",
      message: "boot.command[0]: <enterr> (column 1) is not a key or a wait: it will be typed as text (did you mean <enter>?)",
    });
  });
});

describe("validate --json", () => {
  it("a valid template: one JSON object with ok, name, drivers, formats, warnings (it printed text)", async () => {
    const t = file("j1.yaml", isoTemplate(["<enterr>"]));
    const r = await cli(["validate", "--json", t]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      ok: true,
      template: t,
      name: "i",
      drivers: ["qemu"],
      formats: ["qcow2"],
      problems: [],
      warnings: [{ path: "boot.command[0]", message: expect.stringContaining("did you mean <enter>") as unknown, code: "BOOT_COMMAND_UNKNOWN_KEY" }],
    });
  });

  it("a bad template: exit 2, every problem with path, message, code; nothing on stderr", async () => {
    const t = file("j2.yaml", `name: x\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: { cpu: 2, memory: 1 } }\n`);
    const r = await cli(["validate", "--json", t]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      template: t,
      problems: [
        { path: "drivers.qemu.cpu", message: 'unknown field (did you mean "cpus"?)', code: "UNKNOWN_FIELD" },
        { path: "drivers.qemu.memory", message: "must be from 4 MiB to 24 TiB (got 1)", code: "TEMPLATE_INVALID" },
      ],
      warnings: [],
    });
  });

  it("missing fields are REQUIRED and a syntax error is TEMPLATE_SYNTAX", async () => {
    const r1 = await cli(["validate", "--json", file("j3.yaml", "name: x\n")]);
    expect(JSON.parse(r1.stdout).problems).toEqual([
      { path: "source", message: "required", code: "REQUIRED" },
      { path: "drivers", message: "required", code: "REQUIRED" },
    ]);
    const r2 = await cli(["validate", "--json", file("j4.json", '{"name": }')]);
    expect(r2.code).toBe(2);
    expect(JSON.parse(r2.stdout).problems).toEqual([{ path: "", message: "JSON syntax error at line 1:10: expected a value", code: "TEMPLATE_SYNTAX" }]);
  });

  it("an unreadable file or a bad -var is one problem with the error's code", async () => {
    const r = await cli(["validate", "--json", path.join(dir, "nope.yaml")]);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: false, warnings: [] });
    expect(out.problems).toEqual([{ path: "", message: expect.stringMatching(/nope\.yaml: cannot read: ENOENT/) as unknown, code: "TEMPLATE_NOT_FOUND" }]);
    const r2 = await cli(["validate", "--json", "-var", "novalue", file("j5.yaml", "name: x\n")]);
    expect(JSON.parse(r2.stdout).problems).toEqual([{ path: "", message: '-var: expected NAME=VALUE, got no "="', code: "INVALID_VAR" }]);
  });

  it("masks secrets in the JSON too", async () => {
    const t = file("j6.yaml", `name: s\nvariables: { mem: { sensitive: true } }\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: { memory: "\${var.mem}" } }\n`);
    const r = await cli(["validate", "--json", "-var", "mem=s3cr3t-mem", t]);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain("s3cr3t-mem");
    expect(JSON.parse(r.stdout).problems[0]).toEqual({ path: "drivers.qemu.memory", message: 'invalid size "***": use e.g. 20G, 512M, 1T', code: "TEMPLATE_INVALID" });
  });
});

describe("validate checks where the output would go (it passed, and build then refused or, before, deleted it)", () => {
  const cloud = (output: string) => `name: o\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\noutput: { directory: ${JSON.stringify(output)} }\n`;

  it.each([
    [".", "holds the template", /^vmkiln: error: .*output\.directory: .* (is|contains) the template/m],
    ["..", "holds the template", /^vmkiln: error: .*output\.directory: .* (is|contains) the template/m],
  ])("output.directory %s (%s): exit 2 naming the field", async (out, _why, re) => {
    const sub = path.join(dir, `o-${Math.random().toString(36).slice(2)}`);
    mkdirSync(sub);
    const t = path.join(sub, "t.yaml");
    writeFileSync(t, cloud(out));
    const r = await cli(["validate", t]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(r.stdout).toBe("");
  });

  it("a directory that is not a vmkiln output, and a file: exit 2; --json puts the problem at output.directory", async () => {
    const theirs = path.join(dir, "theirs");
    mkdirSync(theirs, { recursive: true });
    writeFileSync(path.join(theirs, "notes.txt"), "keep me\n");
    const r = await cli(["validate", file("o1.yaml", cloud(theirs))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`output.directory: ${theirs} is not a vmkiln output directory`);
    const f = file("plain-file", "x");
    const j = await cli(["validate", "--json", file("o2.yaml", cloud(f))]);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout).problems).toEqual([{ path: "output.directory", message: `output.directory: ${f} is a file, not a directory`, code: "OUTPUT_NOT_DIRECTORY" }]);
  });

  it("a directory that does not exist yet, or is empty, is fine", async () => {
    const empty = path.join(dir, "empty-out");
    mkdirSync(empty, { recursive: true });
    expect((await cli(["validate", file("o3.yaml", cloud(path.join(dir, "not-yet", "out")))])).code).toBe(0);
    expect((await cli(["validate", file("o4.yaml", cloud(empty))])).code).toBe(0);
  });
});
