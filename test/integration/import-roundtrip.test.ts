// Issue 15 item 3: a Packer template imported by `vmkiln import` builds with `vmkiln build` into a
// qcow2 that boots. Two round trips, as a user would run them (the CLI from dist/): the benchmark's
// own Packer JSON template for the fixture guest (test/bench/lib/templates.mjs, qemu builder, the
// template Packer 1.6.6 builds in `npm run bench`), imported and validated; and a qemu-builder HCL2
// template (test/fixtures/packer/roundtrip: variables, locals, a file provisioner, execute_command),
// imported into another directory so its relative paths must have been rewritten to work from
// there, then built and booted.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { bootImage } from "../helpers/boot.js";
import { REPO, runCli } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuSnapshot } from "../helpers/processes.js";
import { itFull } from "../helpers/tier.js";
import { freePort } from "../../src/util/net.js";
// @ts-expect-error: plain ESM module without types (the benchmark's templates)
import { packerTemplate } from "../bench/lib/templates.mjs";

function keyPair(dir: string): string {
  const key = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "import-roundtrip", "-f", key]);
  return key;
}

function qcow2Info(path: string): { format: string; "backing-filename"?: string } {
  execFileSync("qemu-img", ["check", path]);
  return JSON.parse(execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" })) as { format: string };
}

describe("vmkiln import → vmkiln build → boot", () => {
  let work: string;
  let image: string;
  let key: string;
  const vms = qemuSnapshot();

  beforeAll(async () => {
    image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-import-it-"));
    key = keyPair(work);
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  it("the benchmark's Packer JSON template (qemu builder)", async () => {
    const dir = join(work, "bench");
    const out = join(dir, "output");
    execFileSync("mkdir", ["-p", dir]);
    const accel = existsSync("/dev/kvm") && !existsSync("/sys/module/kvm_pvm") ? "kvm" : "tcg";
    const tpl = packerTemplate({
      name: "bench", vmName: "bench.qcow2", outputDir: out, image, compression: "zlib", diskCache: "unsafe", accel,
      cidataIso: join(dir, "cidata.iso"), consoleLog: join(dir, "console.log"), sshPort: await freePort(), privateKeyFile: key,
    });
    writeFileSync(join(dir, "bench.json"), JSON.stringify(tpl, null, 2));

    const imp = await runCli(["import", join(dir, "bench.json"), "-o", join(dir, "vmkiln.yaml")]);
    expect(imp.code, imp.stderr).toBe(0);
    // The drives and NIC the bench adds for Packer are vmkiln's own: reported, not silently dropped.
    expect(imp.stderr).toMatch(/not mapped: builders\[0\]\.qemuargs\[1\] \(line \d+\): -drive/);
    const written = YAML.parse(readFileSync(join(dir, "vmkiln.yaml"), "utf8")) as Record<string, any>;
    expect(written.source.cloud_image).toMatchObject({ path: image, checksum: "none" });
    expect(written.provision.map((p: object) => Object.keys(p)[0])).toEqual(["shell", "shell", "shell"]);
    expect(written.provision[0].shell.sudo).toBe(true);

    // Built and booted below is the HCL2 round trip (one VM build per file keeps the suite's VM time
    // down); this one must be a template vmkiln accepts as it stands, every path resolving.
    const check = await runCli(["validate", join(dir, "vmkiln.yaml"), "--json"]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, problems: [] });
    expect(existsSync(out)).toBe(false);
  });

  // Full tier (test/helpers/tier.ts): a build and a boot; the import is checked in the fast tier by
  // the validate above and by the unit tier's importer tests.
  itFull("a qemu-builder HCL2 template, imported into another directory", async () => {
    const dir = join(work, "hcl", "elsewhere");
    const out = join(work, "hcl", "output");
    const template = join(REPO, "test/fixtures/packer/roundtrip/qemu-cloud.pkr.hcl");
    const imp = await runCli(["import", template, "-o", join(dir, "vmkiln.yaml"), "-var", `image=${image}`, "-var", `ssh_key=${key}`, "-var", `output_dir=${out}`]);
    expect(imp.code, imp.stderr).toBe(0);
    const written = YAML.parse(readFileSync(join(dir, "vmkiln.yaml"), "utf8")) as Record<string, any>;
    // The file provisioner's ${path.root}/files/motd, rewritten to reach the same file from dir.
    expect(written.provision[2].file.source).toMatch(/^\.\.\/.*test\/fixtures\/packer\/roundtrip\/files\/motd$/);
    expect(written.variables).toMatchObject({ greeting: "hello from packer hcl" });

    const build = await runCli(["build", join(dir, "vmkiln.yaml"), "--json", "-var", "greeting=built from hcl"]);
    expect(build.code, build.stderr.slice(-3000)).toBe(0);
    const qcow2 = join(out, "roundtrip.qcow2");
    expect(qcow2Info(qcow2)).toMatchObject({ format: "qcow2" });
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(/roundtrip\.qcow2/);
    expect(existsSync(join(out, "manifest.json"))).toBe(true);

    const vm = await bootImage(qcow2);
    try {
      // The variable stayed a variable: -var at build time reached the guest.
      expect((await vm.sh("cat /etc/roundtrip/greeting")).trim()).toBe("built from hcl");
      expect((await vm.sh("cat /etc/roundtrip/motd")).trim()).toBe("built by vmkiln from a Packer HCL2 template");
    } finally {
      await vm.stop();
    }
  });
});
