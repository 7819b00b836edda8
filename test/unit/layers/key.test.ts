// A stage's key (issue 17): what decides the stage's result changes it; where it is copied to, or
// where the checkout lives, does not; secrets reach the digest but not the shown spec.
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashTree, stageKey, stableJson } from "../../../src/layers/key.js";
import { loadBuild } from "../../../src/layers/load.js";
import type { BuildSpec } from "../../../src/template/spec.js";

let dir: string;
const signal = new AbortController().signal;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "vmkiln-key-"));
  await mkdir(join(dir, "t"));
  await writeFile(join(dir, "t", "disk.qcow2"), "disk");
  await writeFile(join(dir, "t", "a.sh"), "echo a\n");
  await mkdir(join(dir, "t", "up"));
  await writeFile(join(dir, "t", "up", "f"), "f");
  await writeFile(
    join(dir, "t", "t.yaml"),
    `name: t
variables:
  out: ./out
  token: { default: s3cret-value, sensitive: true }
source:
  cloud_image: { path: ./disk.qcow2, checksum: none, format: qcow2 }
drivers:
  qemu: {}
  virtualbox: {}
stages:
  - name: base
    provision:
      - shell: { script: ./a.sh, env: { TOKEN: "\${var.token}" } }
      - file: { source: ./up/, destination: /opt/up }
output:
  directory: \${var.out}
`,
  );
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function base(file = join(dir, "t", "t.yaml"), vars: Record<string, string> = {}): Promise<BuildSpec> {
  const l = await loadBuild(file, { vars });
  if (l.kind !== "layered") throw new Error("layered expected");
  return l.plan.stages[0]!.spec;
}
const k = async (spec: BuildSpec, src = "sha256:aa") => (await stageKey(spec, "qemu", src, signal)).key;

describe("stage key", () => {
  it("is stable, and ignores the output directory and where the checkout lives", async () => {
    const a = await k(await base());
    expect(await k(await base())).toBe(a);
    expect(await k(await base(undefined, { out: "/elsewhere" }))).toBe(a);
    await cp(join(dir, "t"), join(dir, "moved"), { recursive: true });
    expect(await k(await base(join(dir, "moved", "t.yaml")))).toBe(a);
  });

  it("changes with a script's content, an uploaded file, a variable, the source digest and the driver", async () => {
    const a = await k(await base());
    await writeFile(join(dir, "t", "a.sh"), "echo b\n");
    const b = await k(await base());
    expect(b).not.toBe(a);
    await writeFile(join(dir, "t", "up", "g"), "new file");
    const c = await k(await base());
    expect(c).not.toBe(b);
    expect(await k(await base(undefined, { token: "other" }))).not.toBe(c);
    expect(await k(await base(), "sha256:bb")).not.toBe(c);
    expect((await stageKey(await base(), "virtualbox", "sha256:aa", signal)).key).not.toBe(c);
  });

  it("never shows a secret, though the secret is in the digest", async () => {
    const r = await stageKey(await base(), "qemu", "sha256:aa", signal);
    expect(JSON.stringify(r.shownSpec)).not.toContain("s3cret-value");
    expect(JSON.stringify(r.inputs)).not.toContain("s3cret-value");
    expect(r.inputs.map((i) => i.path).sort()).toEqual(["a.sh", "up"]);
  });

  it("hashTree: a symlink is hashed by its target, not followed; a missing required input is an error", async () => {
    const { symlink } = await import("node:fs/promises");
    await symlink("/etc/passwd", join(dir, "t", "up", "l"));
    const h1 = await hashTree(join(dir, "t", "up"), "x", signal);
    await rm(join(dir, "t", "up", "l"));
    await symlink("/etc/hosts", join(dir, "t", "up", "l"));
    expect(await hashTree(join(dir, "t", "up"), "x", signal)).not.toBe(h1);
    await expect(hashTree(join(dir, "nope"), "provision[0]", signal)).rejects.toThrow(/provision\[0\]: .* does not exist/);
    expect(await hashTree(join(dir, "nope"), "x", signal, true)).toBe("absent");
  });

  it("with text rendered at build time (an answer file, the boot command), only the variables it names are in the key", async () => {
    await writeFile(join(dir, "t", "ks.cfg"), "url --url=${var.mirror}\n");
    const text = (await import("node:fs")).readFileSync(join(dir, "t", "t.yaml"), "utf8");
    await writeFile(
      join(dir, "t", "t.yaml"),
      text.replace("variables:\n", "variables:\n  mirror: http://m1\n  hostname: h1\n").replace("cloud_image: { path: ./disk.qcow2, checksum: none, format: qcow2 }", "iso: { path: ./disk.qcow2, checksum: none }").replace("qemu: {}\n  virtualbox: {}", "qemu: { disk_size: 1G }").replace("stages:", 'http: { content: { /ks.cfg: { file: ./ks.cfg } } }\nboot: { command: ["linux ks=${http.url}/ks.cfg host=${var.hostname}<enter>"] }\nstages:'),
    );
    const a = await k(await base());
    // -var output_dir=… (not named by the rendered text) is not a rebuild; a variable the answer file
    // or the boot command reads is; so is a change of the answer file itself.
    expect(await k(await base(undefined, { out: "/elsewhere" }))).toBe(a);
    expect(await k(await base(undefined, { mirror: "http://m2" }))).not.toBe(a);
    expect(await k(await base(undefined, { hostname: "h2" }))).not.toBe(a);
    await writeFile(join(dir, "t", "ks.cfg"), "url --url=${var.mirror}\nreboot\n");
    expect(await k(await base())).not.toBe(a);
  });

  it("stableJson sorts keys and drops undefined", () => {
    expect(stableJson({ b: 1, a: [undefined, { d: undefined, c: 2 }] })).toBe('{"a":[null,{"c":2}],"b":1}');
  });
});
