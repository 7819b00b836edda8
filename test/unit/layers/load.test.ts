// Layered templates (issue 17): stages and from: become a plan of ordinary specs; every mistake is
// a problem at its place in the file, exit 2.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TemplateError, UserError } from "../../../src/errors.js";
import { loadBuild, type LayeredPlan } from "../../../src/layers/load.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "vmkiln-layers-"));
  await writeFile(join(dir, "disk.qcow2"), "not really a disk");
  await writeFile(join(dir, "a.sh"), "echo a\n");
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const head = `name: t
source:
  cloud_image: { path: ./disk.qcow2, checksum: none, format: qcow2 }
drivers:
  qemu: {}
`;

async function write(name: string, text: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

async function plan(file: string): Promise<LayeredPlan> {
  const l = await loadBuild(file);
  if (l.kind !== "layered") throw new Error("expected a layered template");
  return l.plan;
}

async function problems(file: string): Promise<Record<string, string>> {
  try {
    await loadBuild(file);
  } catch (err) {
    if (err instanceof TemplateError) return Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    throw err;
  }
  throw new Error("expected a TemplateError");
}

describe("stages", () => {
  it("become one spec each, in order, each built on the one before; generalize is deferred to the last", async () => {
    const p = await plan(
      await write("t.yaml", `${head}stages:\n  - name: base\n    provision:\n      - shell: { script: ./a.sh }\n  - name: node\n    provision:\n      - shell: { inline: [echo node] }\n`),
    );
    expect(p.stages.map((s) => [s.label, s.parent])).toEqual([
      ["base", undefined],
      ["node", 0],
    ]);
    expect(p.final).toBe(1);
    expect(p.stages[0]!.spec.provision[0]).toMatchObject({ type: "shell", script: join(dir, "a.sh") });
    expect(p.stages[1]!.spec.provision[0]).toMatchObject({ type: "shell", inline: ["echo node"] });
    expect(p.stages[0]!.spec.generalize).toMatchObject({ machineId: false, cloudInit: false, buildUser: false, sshHostKeys: false });
    expect(p.stages[1]!.spec.generalize.machineId).toBe(true);
    expect([p.stages[0]!.generalizes, p.stages[1]!.generalizes]).toEqual([false, true]);
  });

  it("a stage may generalize itself, and may be built from a named earlier stage", async () => {
    const p = await plan(await write("t.yaml", `${head}stages:\n  - name: a\n    generalize: { machine_id: true }\n  - name: b\n  - name: c\n    from: a\n`));
    expect(p.stages[0]!.spec.generalize.machineId).toBe(true);
    expect(p.stages[2]!.parent).toBe(0);
    // b is off the chain the last stage is built on: it was skipped without a word.
    expect(p.stages[2]!.spec.warnings).toEqual([
      { path: "stages", message: "stage b is never built: the last stage is not built on it (a later stage needs from: b)", code: "STAGE_UNBUILT" },
    ]);
  });

  it("a plain template is not layered", async () => {
    expect((await loadBuild(await write("t.yaml", head))).kind).toBe("plain");
  });

  it("reports every mistake with its field path", async () => {
    const f = await write(
      "t.yaml",
      `${head}provision: []\nstages:\n  - name: a\n    provision:\n      - shell: { script: ./missing.sh }\n  - name: a\n  - name: "../x"\n  - name: c\n    from: later\n    colour: red\n  - 7\n  - name: d\n    provision: nope\n  - name: later\n`,
    );
    const got = await problems(f);
    expect(got["provision"]).toMatch(/each stage has its own provision/);
    expect(got["stages[1].name"]).toMatch(/comes before/);
    expect(got["stages[2].name"]).toMatch(/letters, digits/);
    expect(got["stages[3].from"]).toMatch(/no stage "later" before this one/);
    expect(got["stages[3].colour"]).toMatch(/unknown field/);
    expect(got["stages[4]"]).toMatch(/expected a mapping/);
  });

  it("a stage's own problems are reported under stages[i]", async () => {
    const got = await problems(await write("t.yaml", `${head}stages:\n  - name: a\n    provision:\n      - shell: { script: ./missing.sh }\n  - name: b\n    provision: nope\n`));
    expect(Object.keys(got).sort()).toEqual(["stages[0].provision[0].shell.script", "stages[1].provision"]);
  });

  it("wrong types and an empty list", async () => {
    expect(await problems(await write("t.yaml", `${head}stages: []\n`))).toHaveProperty("stages");
    expect(await problems(await write("t.yaml", `${head}stages: base\n`))).toHaveProperty("stages");
    expect(await problems(await write("t.yaml", `${head}stages:\n  - name: 5\n`))).toHaveProperty(["stages[0].name"]);
    expect(await problems(await write("t.yaml", `${head}stages:\n  - provision: []\n`))).toEqual({ "stages[0].name": "required" });
  });
});

describe("from:", () => {
  const child = (from: string) => `name: child\nfrom: ${from}\ndrivers:\n  qemu: {}\nprovision:\n  - shell: { inline: [echo child] }\n`;

  it("the base template's stages come first; its last one is the child's source, and only the child generalizes", async () => {
    await write("base.yaml", `${head}stages:\n  - name: os\n  - name: hardening\n`);
    const p = await plan(await write("child.yaml", child("./base.yaml")));
    expect(p.stages.map((s) => [s.label, s.parent])).toEqual([
      ["t/os", undefined],
      ["t/hardening", 0],
      ["child", 1],
    ]);
    expect(p.stages.map((s) => s.generalizes)).toEqual([false, false, true]);
    expect(p.stages[1]!.spec.generalize.machineId).toBe(false);
  });

  it("a cycle is named, whatever its length", async () => {
    await write("a.yaml", child("./b.yaml"));
    await write("b.yaml", child("./a.yaml"));
    expect((await problems(join(dir, "b.yaml"))).from ?? (await problems(join(dir, "a.yaml"))).from).toMatch(/cycle: .*a\.yaml → b\.yaml → a\.yaml|cycle: .*b\.yaml → a\.yaml → b\.yaml/);
    await write("self.yaml", child("./self.yaml"));
    expect((await problems(join(dir, "self.yaml"))).from).toMatch(/cycle/);
  });

  it("a missing file, a directory, a wrong type, and from: with source:", async () => {
    expect((await problems(await write("c.yaml", child("./nope.yaml")))).from).toMatch(/no such file/);
    expect((await problems(await write("c.yaml", child(".")))).from).toMatch(/is a directory/);
    expect((await problems(await write("c.yaml", child("[1, 2]")))).from).toMatch(/expected the path/);
    await write("base.yaml", head);
    expect(await problems(await write("c.yaml", `${head}from: ./base.yaml\n`))).toHaveProperty("source");
  });

  it("from: through a symlink to itself is a cycle; a FIFO, a device or a file too large to be a template is refused at from:", async () => {
    const { symlink } = await import("node:fs/promises");
    const { execFileSync } = await import("node:child_process");
    await write("self.yaml", child("./link.yaml"));
    await symlink(join(dir, "self.yaml"), join(dir, "link.yaml"));
    expect((await problems(join(dir, "self.yaml"))).from).toBe("cycle: self.yaml → self.yaml");
    execFileSync("mkfifo", [join(dir, "pipe.yaml")]);
    expect((await problems(await write("c.yaml", child("./pipe.yaml")))).from).toBe(`${join(dir, "pipe.yaml")} is not a regular file`);
    expect((await problems(await write("c.yaml", child("/dev/zero")))).from).toBe("/dev/zero is not a regular file");
    await write("big.yaml", `name: big\n# ${"x".repeat(2 ** 20)}\n`);
    expect((await problems(await write("c.yaml", child("./big.yaml")))).from).toMatch(/big\.yaml: larger than 1 MiB/);
  });

  it("a problem in the base template names the base file", async () => {
    await write("base.yaml", `${head}stages:\n  - name: x\n    provision: 3\n`);
    try {
      await loadBuild(await write("c.yaml", child("./base.yaml")));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/base\.yaml/);
      expect((err as TemplateError).problems.map((p) => p.path)).toEqual(["stages[0].provision"]);
    }
  });

  it("on vSphere a later stage's source is a clone (of the template the stage before keeps); the example validates", async () => {
    const vs = `name: v
source:
  iso: { path: ./disk.qcow2, checksum: none }
drivers:
  vsphere: { url: "https://vc.invalid", username: u, password: secretpw, cluster: C, datastore: D, disk_size: 4G }
stages:
  - name: base
  - name: app
output: { formats: [ova] }
`;
    const p = await plan(await write("v.yaml", vs));
    expect(p.stages.map((s) => [s.label, s.spec.source.kind])).toEqual([
      ["base", "iso"],
      ["app", "clone"],
    ]);
    const example = await loadBuild(join(import.meta.dirname, "../../../fixtures/examples/vsphere-iso-clone-ova.yaml"), { env: { VSPHERE_USERNAME: "u", VSPHERE_PASSWORD: "secretpw" } });
    expect(example.kind).toBe("layered");
    if (example.kind !== "layered") return;
    expect(example.plan.stages.map((s) => [s.label, s.spec.source.kind, s.generalizes])).toEqual([["base", "iso", false], ["appliance", "clone", true]]);
    // Its kickstart renders completely, reboots into the installed system and installs open-vm-tools.
    const base = example.plan.stages[0]!.spec;
    const { renderEntry } = await import("../../../src/http/render.js");
    const ks = await renderEntry(base.http!.content["/ks.cfg"]!, { variables: base.variables, env: {}, name: base.name, values: { "http.ip": "192.0.2.1", "http.port": "8080", "http.url": "http://192.0.2.1:8080/p", "ssh.public_key": "ssh-ed25519 AAAAC3Nz build" } }, "/ks.cfg");
    expect(ks).not.toMatch(/\$\{(var|env|http|ssh)\./);
    expect(ks).toMatch(/^reboot --eject$/m);
    expect(ks).not.toMatch(/^poweroff/m);
    expect(ks).toMatch(/^open-vm-tools$/m);
    expect(ks).toContain('sshkey --username=builder "ssh-ed25519 AAAAC3Nz build"');
    expect(base.http!.expect).toEqual(["/ks.cfg"]);
  });

  it("drivers that take different kinds of stage source (a disk file, a kept VM) in one layered template: one clear problem", async () => {
    const mixed = `name: m
source:
  iso: { path: ./disk.qcow2, checksum: none }
drivers:
  qemu: { disk_size: 4G }
  vsphere: { url: "https://vc.invalid", username: u, password: secretpw, cluster: C, datastore: D, disk_size: 4G }
stages:
  - name: base
  - name: app
`;
    expect(await problems(await write("m.yaml", mixed))).toEqual({ drivers: expect.stringMatching(/take different kinds; give a layered template drivers of one kind$/) });
    // A real problem in a later stage is still reported as itself, not hidden by the placeholder.
    const bad = mixed.replace("  qemu: { disk_size: 4G }\n", "").replace("  - name: app\n", "  - name: app\n    provision: [ { shell: { script: ./missing.sh } } ]\n");
    expect(Object.keys(await problems(await write("b.yaml", bad)))).toEqual(["stages[1].provision[0].shell.script"]);
  });
});
