// The install-completion path of the real QEMU driver (issue 4), on the fixture guest instead of a
// 20-minute install: a VM with an installer ISO attached and exitOnReboot, whose guest reboots
// (what an installer does at the end) → QEMU exits (-no-reboot) → waitForGuestStop → restart
// without the installer media → the same disk boots again, the ISO is gone.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { QemuDriver } from "../../drivers/qemu/index.js";
import { EventBus } from "../../src/log/events.js";
import { writeCidataIso } from "../../src/media/cidata.js";
import { Journal } from "../../src/pipeline/journal.js";
import type { VmHandle } from "../../src/pipeline/driver.js";
import { generateBuildKey } from "../../src/ssh/keys.js";
import { waitForSsh } from "../../src/ssh/wait.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { ensureNetbootIso } from "../helpers/netboot-iso.js";
import { qemuProcesses } from "../helpers/processes.js";
import { TEST_QEMU_SPEC } from "../helpers/boot.js";
import { describeFull } from "../helpers/tier.js";

// Full tier (test/helpers/tier.ts): an installer guest of its own; the ISO path's boot command and
// HTTP server run in iso-boot-command.test.ts and the vSphere ISO build.
describeFull("QEMU driver: install completion", () => {
  const name = `vmkiln-restart-${Date.now()}`;
  afterAll(() => expect(qemuProcesses(name)).toEqual([]));

  it("a guest reboot ends the install run; restart boots the disk without the installer ISO", async () => {
    const [image, iso] = [await ensureFixtureGuest(), ensureNetbootIso()];
    const dir = await mkdtemp(join(tmpdir(), "vmkiln-restart-"));
    const events = new EventBus();
    const journal = new Journal(`test-restart-${Date.now()}`);
    const driver = new QemuDriver(
      TEST_QEMU_SPEC,
      22,
      events,
      journal,
    );
    let vm: VmHandle | undefined;
    const signal = new AbortController().signal;
    try {
      const key = await generateBuildKey(dir, "vmkiln-test");
      const cidata = join(dir, "cidata.iso");
      await writeCidataIso(cidata, {
        metaData: stringify({ "instance-id": name, "local-hostname": "restart" }),
        userData: "#cloud-config\n" + stringify({ users: ["default", { name: "tester", sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [key.publicKey] }] }),
        networkConfig: "",
      });
      vm = await driver.createVm(
        { name, buildId: "restart", buildDir: dir, sourceDisk: { path: image, format: "qcow2" }, installerIso: iso, cidataIso: cidata, diskSize: undefined, firmware: "bios", exitOnReboot: true },
        signal,
      );
      await driver.start(vm, signal);
      const ssh = async () => {
        const ep = await driver.sshEndpoint(vm!);
        const r = await waitForSsh({ target: { host: ep.host, port: ep.port, username: "tester", privateKey: key.privateKey }, timeoutMs: 600_000, events, signal, vmExited: driver.exited(vm!) });
        return r.session;
      };
      const first = await ssh();
      // The installer CD is attached during the "install" (checked on the QEMU side: the fixture's
      // cloud kernel has no CD-ROM driver) and QEMU runs with -no-reboot.
      const during = qemuProcesses(name)[0]?.cmdline ?? "";
      expect(during).toContain(`file=${iso},media=cdrom`);
      expect(during).toContain("-no-reboot");
      await first.exec("sudo -n sh -c 'touch /var/tmp/before-restart; sync; nohup sh -c \"sleep 1; reboot\" >/dev/null 2>&1 &'", { signal, timeoutMs: 60_000 });
      await first.close();
      expect(await driver.waitForGuestStop(vm, { timeoutMs: 300_000 }, signal)).toBe(true);
      expect(qemuProcesses(name)).toEqual([]); // -no-reboot: the reboot ended QEMU

      await driver.restart(vm, { removeInstallerMedia: true }, signal);
      const second = await ssh();
      expect((await second.capture("ls /var/tmp/before-restart", { signal, timeoutMs: 60_000 })).trim()).toBe("/var/tmp/before-restart");
      const after = qemuProcesses(name)[0]?.cmdline ?? "";
      expect(after).not.toContain(iso);
      expect(after).not.toContain("-no-reboot");
      await second.close();
    } finally {
      if (vm) await driver.destroyVm(vm);
      await rm(dir, { recursive: true, force: true });
      journal.close();
    }
  });
});
