// Issue 6 acceptance: the VirtualBox driver end to end against the VBoxManage TEST DOUBLE
// (test/doubles/VBoxManage, first on PATH), whose machines run on real QEMU.
//   1. A cloud-image build with real SSH provisioning → an OVA that passes `vmkiln verify`.
//   2. The OVA's disk boots (through the driver and the double, i.e. under QEMU) and boot-command
//      keys typed with `controlvm keyboardputscancode` reach the guest's console: the typed command
//      leaves a file we read over SSH, and the scan codes the double recorded decode back to exactly
//      the typed boot command.
//   3. An abort mid-build leaves no machine in the double's registry and no qemu process.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualBoxDriver } from "../../drivers/virtualbox/index.js";
import { parseVmList } from "../../drivers/virtualbox/machinereadable.js";
import { scancodesToEvents } from "../../drivers/virtualbox/scancodes.js";
import { parseBootCommand } from "../../src/bootcommand/parse.js";
import { EventBus } from "../../src/log/events.js";
import { writeCidataIso } from "../../src/media/cidata.js";
import type { VmHandle } from "../../src/pipeline/driver.js";
import { Journal } from "../../src/pipeline/journal.js";
import { generateBuildKey } from "../../src/ssh/keys.js";
import { waitForSsh } from "../../src/ssh/wait.js";
import { sleep } from "../../src/util/abort.js";
import { REPO, runCli, startCli, type CliResult } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";

const DOUBLES = fileURLToPath(new URL("../doubles", import.meta.url));
const VBOXMANAGE = join(DOUBLES, "VBoxManage");
const EXAMPLE = join(REPO, "fixtures/examples/virtualbox-cloud-image.yaml");
// Shifted symbols, an arrow key (an e0-prefixed code) and an edit: "typed.tt" ← "x" → "typed.txt".
const BOOT_COMMAND = "echo 'Typed: Hello, VBox!' | tee /tmp/typed.tt<left>x<enter>";

describe("virtualbox on the VBoxManage double: cloud image → OVA", () => {
  let image: string;
  let work: string;
  let out: string;
  let env: Record<string, string>;
  let res: CliResult;

  const registry = () => parseVmList(execFileSync(VBOXMANAGE, ["list", "vms"], { env: { ...process.env, ...env }, encoding: "utf8" }));

  beforeAll(async () => {
    image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-vbox-"));
    out = join(work, "out");
    env = { PATH: `${DOUBLES}:${process.env.PATH ?? ""}`, VBOXMANAGE_DOUBLE_STATE: join(work, "double", "state.json"), VMKILN_FIXTURE_IMAGE: image };
    res = await runCli(["build", EXAMPLE, "--json", "-var", `output_dir=${out}`, "-var", "ovf_version=2.0"], env);
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  });

  afterAll(async () => {
    // Every VM the double started has its QMP socket under work/double: none may be left.
    const left = work ? qemuProcesses(join(work, "double")) : [];
    if (work) await rm(work, { recursive: true, force: true });
    expect(left).toEqual([]);
  });

  it("builds with real SSH provisioning and leaves nothing registered", () => {
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const ends = res.events.filter((e) => e.type === "step-end").map((e) => e.step);
    expect(ends).toEqual(["prepare", "fetch source", "ssh key", "cidata", "create vm", "start vm", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export"]);
    const logs = res.events.filter((e) => e.type === "log").map((e) => String(e.message));
    expect(logs).toContain("VirtualBox 7.0.20");
    expect(logs.some((l) => /^exported OVF 2\.0: debian-12-vbox\.ovf, debian-12-vbox-disk001\.vmdk$/.test(l))).toBe(true);
    // The provisioner ran in the guest over SSH.
    expect(res.events.some((e) => e.type === "output" && /^machine-id [0-9a-f]{32}$/.test(String(e.line)))).toBe(true);
    expect(registry()).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "debian-12-vbox.ova", "debian-12-vbox.ova.sha256", "debian-12-vbox.spdx.json", "manifest.json"]);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out });
  });

  describe("the OVA", () => {
    let ex: string;
    beforeAll(() => {
      if (res.code !== 0) return;
      ex = join(work, "ova-x");
      mkdirSync(ex);
      execFileSync("tar", ["-xf", join(out, "debian-12-vbox.ova"), "-C", ex]);
    });

    it("passes vmkiln verify", async () => {
      const r = await runCli(["verify", join(out, "debian-12-vbox.ova"), "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
    });

    it("was rewritten vSphere-safe: OVF first, canonical SHA256 manifest, vmx-NN, file sizes", () => {
      const list = execFileSync("tar", ["-tf", join(out, "debian-12-vbox.ova")], { encoding: "utf8" }).trim().split("\n");
      expect(list).toEqual(["debian-12-vbox.ovf", "debian-12-vbox.mf", "debian-12-vbox-disk001.vmdk"]);
      const mf = readFileSync(join(ex, "debian-12-vbox.mf"), "utf8").trim().split("\n");
      for (const line of mf) {
        const m = /^SHA256\((.+)\)= ([0-9a-f]{64})$/.exec(line);
        expect(m, line).not.toBeNull();
        expect(execFileSync("sha256sum", [join(ex, m![1]!)], { encoding: "utf8" }).split(" ")[0]).toBe(m![2]);
      }
      const ovf = readFileSync(join(ex, "debian-12-vbox.ovf"), "utf8");
      expect(ovf).toContain('ovf:version="2.0"'); // VBoxManage export --ovf20 wrote it
      expect(ovf).toMatch(/<vssd:VirtualSystemType>vmx-\d\d<\/vssd:VirtualSystemType>/);
      expect(ovf).toMatch(/ovf:href="debian-12-vbox-disk001\.vmdk" ovf:size="\d+"/);
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(ex, "debian-12-vbox-disk001.vmdk")], { encoding: "utf8" }));
      expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
      expect(info["virtual-size"]).toBe(4 * 1024 ** 3);
    });

    it("its disk boots under QEMU, keeps what was provisioned, and typed scan codes reach the console", async () => {
      const dir = join(work, "boot");
      mkdirSync(dir);
      const prevState = process.env.VBOXMANAGE_DOUBLE_STATE;
      process.env.VBOXMANAGE_DOUBLE_STATE = env.VBOXMANAGE_DOUBLE_STATE!;
      const events = new EventBus();
      const journal = new Journal(`test-vbox-boot-${Date.now()}`);
      const driver = new VirtualBoxDriver(
        {
          cpus: 2, memory: 1024, diskSize: undefined, firmware: "bios", diskFormat: "vdi", headless: true, guestOsType: "Debian_64",
          graphicsController: "vmsvga", diskController: "virtio", nicType: "virtio", ovfVersion: "1.0", vboxmanage: [], binary: VBOXMANAGE, sshHostPort: undefined,
        },
        22,
        events,
        journal,
      );
      const signal = new AbortController().signal;
      let vm: VmHandle | undefined;
      try {
        const key = await generateBuildKey(dir, "vmkiln-test");
        const cidata = join(dir, "cidata.iso");
        // A fresh user for SSH, and root logged in on tty1 (the VGA console the keyboard types into).
        await writeCidataIso(cidata, {
          metaData: stringify({ "instance-id": `vbox-boot-${Date.now()}`, "local-hostname": "vboxboot" }),
          userData:
            "#cloud-config\n" +
            stringify({
              users: [{ name: "tester", shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [key.publicKey] }],
              write_files: [
                {
                  path: "/etc/systemd/system/getty@tty1.service.d/autologin.conf",
                  content: "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %I $TERM\n",
                },
              ],
              runcmd: [["systemctl", "daemon-reload"], ["systemctl", "restart", "getty@tty1"]],
            }),
          networkConfig: "",
        });
        vm = await driver.createVm(
          { name: `vmkiln-vboxboot-${Date.now()}`, buildId: "vboxboot", buildDir: dir, sourceDisk: { path: join(ex, "debian-12-vbox-disk001.vmdk"), format: "vmdk" }, installerIso: undefined, cidataIso: cidata, diskSize: undefined, firmware: "bios" },
          signal,
        );
        await driver.start(vm, signal);
        const ep = await driver.sshEndpoint(vm);
        const { session } = await waitForSsh({ target: { host: ep.host, port: ep.port, username: "tester", privateKey: key.privateKey }, timeoutMs: 600_000, events, signal });
        const sh = (cmd: string) => session.capture(cmd, { signal, timeoutMs: 120_000 });
        try {
          expect((await sh("cat /etc/vmkiln/greeting")).trim()).toBe("built on VirtualBox");
          expect(await sh("getent passwd builder || true")).toBe(""); // generalized: the build user is gone
          // Wait for root's shell on tty1, then type.
          for (let i = 0; !(await sh("pgrep -t tty1 -u root -x bash || true")).trim(); i++) {
            if (i > 120) throw new Error("no root shell on tty1 after 6 minutes");
            await sleep(3_000, signal);
          }
          await sleep(3_000, signal);
          await driver.sendKeys(vm, parseBootCommand(BOOT_COMMAND), signal);
          let typed = "";
          for (let i = 0; i < 40 && !typed; i++) {
            await sleep(1_500, signal);
            typed = (await sh("cat /tmp/typed.txt 2>/dev/null || true")).trim();
          }
          expect(typed).toBe("Typed: Hello, VBox!");
        } finally {
          await session.close();
        }
        // What the double recorded is exactly what was typed.
        const state = JSON.parse(readFileSync(env.VBOXMANAGE_DOUBLE_STATE!, "utf8")) as { machines: Array<{ name: string; scancodes: string[][] }> };
        const groups = state.machines.find((m) => m.name === vm!.id)!.scancodes;
        expect(groups.length).toBeGreaterThan(1); // bounded groups, not one long call
        for (const g of groups) expect(g.length).toBeLessThanOrEqual(25);
        expect(scancodesToEvents(groups.flat())).toEqual(parseBootCommand(BOOT_COMMAND));
      } finally {
        if (vm) await driver.destroyVm(vm);
        journal.close();
        process.env.VBOXMANAGE_DOUBLE_STATE = prevState;
      }
      expect(registry()).toEqual([]);
      expect(qemuProcesses("vmkiln-vboxboot-")).toEqual([]);
    });
  });

  it("an abort mid-build leaves no machine registered and no qemu process", async () => {
    const run = startCli(["build", EXAMPLE, "--json", "-var", `output_dir=${join(work, "aborted")}`], env);
    const first = await run.waitForEvent((e) => e.type === "log" && /^build \S+:/.test(String(e.message)), 120_000);
    const buildId = /^build (\S+):/.exec(String(first.message))![1]!;
    await run.waitForEvent((e) => e.type === "step-start" && e.step === "wait for ssh", 300_000);
    expect(registry().map((m) => m.name)).toEqual([`vmkiln-${buildId}`]);
    expect(qemuProcesses(buildId)).toHaveLength(1); // really running when interrupted
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    expect(r.events.some((e) => e.type === "cleanup" && /destroy vm/.test(String(e.what)) && e.ok === true)).toBe(true);
    expect(registry()).toEqual([]);
    expect(qemuProcesses(buildId)).toEqual([]);
  });
});
