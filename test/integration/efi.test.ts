// Issue 13: a guest shaped like Debian's genericcloud image (GPT, BIOS boot partition, ESP, GRUB for
// BIOS and EFI; fixtures/guest-gpt/build.sh) built with `firmware: efi` on QEMU under OVMF as the
// driver finds it, exported as qcow2 and OVA; then the export boots under OVMF as a user would.
// The build runs GRUB's own tools in the guest (grub-install for both platforms, update-grub), as a
// kernel or GRUB upgrade would, so the export also proves those tools work on this layout.
//
// Two guest runs, not three: TCG boots cost most of this file's time. The OVA's disk is booted (with
// Secure Boot: the harder case); the qcow2 is shown to hold the same disk, sector for sector
// (qemu-img compare), so it boots as that one does.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeOvmf } from "../../drivers/qemu/ovmf.js";
import { bootImage, type BootedVm } from "../helpers/boot.js";
import { runCli, type CliResult } from "../helpers/cli.js";
import { ensureGptFixtureGuest } from "../helpers/fixture.js";
import { qemuSnapshot } from "../helpers/processes.js";

const NAME = "debian-12-efi";
const DISK = 3 * 1024 ** 3;

/** The template: the GPT fixture grown to 3 GiB, booted under UEFI, GRUB reinstalled by its own tools. */
function template(out: string): string {
  return `name: ${NAME}
source:
  cloud_image:
    path: \${env.VMKILN_GPT_FIXTURE_IMAGE}
    checksum: none
    format: qcow2
drivers:
  qemu:
    cpus: 2
    memory: 1024
    disk_size: 3G
    firmware: efi
ssh:
  username: builder
  timeout: 10m
provision:
  - shell:
      name: check uefi and reinstall grub
      sudo: true
      inline:
        - test -d /sys/firmware/efi
        - echo "booted by $(cat /sys/firmware/efi/fw_platform_size)-bit UEFI"
        - findmnt -n -o FSTYPE /boot/efi
        # What grub-cloud-amd64 does on an upgrade (its postinst), then what a kernel upgrade does.
        - grub-install --target=i386-pc /dev/vda
        - grub-install --target=x86_64-efi --no-nvram --uefi-secure-boot --force-extra-removable
        - update-grub
        - echo efi-build > /etc/vmkiln-efi
output:
  directory: ${out}
  formats: [qcow2, ova]
  ova:
    os_type: debian12
`;
}

describe("EFI: the GPT fixture built with firmware: efi, its export booted under OVMF", () => {
  let work: string;
  let out: string;
  let res: CliResult;
  const vms = qemuSnapshot();
  // The system's VARS template must never be written: each VM boots on its own copy.
  const ovmf = probeOvmf({ machine: "q35", secureBoot: false });
  const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
  const varsBefore = { sha: sha(ovmf.varsTemplate), mtime: statSync(ovmf.varsTemplate).mtimeMs };

  let image: string;
  // Two hooks, each with its own hookTimeout: on a fresh machine the fixture build alone takes minutes.
  beforeAll(async () => {
    const t0 = Date.now();
    image = await ensureGptFixtureGuest();
    console.error(`efi.test: GPT fixture ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "vmkiln-efi-"));
    out = join(work, "out");
    await mkdir(join(work, "t"));
    await writeFile(join(work, "t", "efi.yaml"), template(out));
    const t0 = Date.now();
    res = await runCli(["build", join(work, "t", "efi.yaml"), "--json"], { VMKILN_GPT_FIXTURE_IMAGE: image });
    console.error(`efi.test: build (exit ${res.code}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  const logs = () => res.events.filter((e) => e.type === "log").map((e) => String(e.message));
  const output = () => res.events.filter((e) => e.type === "output").map((e) => String(e.line)).join("\n");

  it("builds under UEFI with the probed OVMF, GRUB's own tools succeeding in the guest", () => {
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    expect(logs().join("\n")).toContain(`UEFI firmware ${ovmf.code} (${ovmf.origin})`);
    expect(output()).toMatch(/booted by 64-bit UEFI/);
    expect(output()).toMatch(/^vfat$/m);
    expect(output()).toMatch(/Installation finished\. No error reported\.[\s\S]*Installation finished\. No error reported\./);
    expect(sha(ovmf.varsTemplate)).toBe(varsBefore.sha);
    expect(statSync(ovmf.varsTemplate).mtimeMs).toBe(varsBefore.mtime);
  });

  describe("the exports", () => {
    let ex: string;
    beforeAll(async () => {
      if (res.code !== 0) return;
      ex = join(work, "ova-x");
      await mkdir(ex);
      execFileSync("tar", ["-xf", join(out, `${NAME}.ova`), "-C", ex]);
    });

    it("the OVF says EFI the way vSphere reads it (vmw:Config firmware in VirtualHardwareSection)", async () => {
      const ovf = readFileSync(join(ex, `${NAME}.ovf`), "utf8");
      const hw = /<VirtualHardwareSection>([\s\S]*?)<\/VirtualHardwareSection>/.exec(ovf)?.[1] ?? "";
      expect(hw).toContain('<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>');
      const r = await runCli(["verify", join(out, `${NAME}.ova`), "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    });

    it("the qcow2 and the OVA's disk hold the same 3 GiB disk", () => {
      // Exit 0 only when every sector reads the same (1: they differ, 2: an error).
      const r = execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "vmdk", join(out, `${NAME}.qcow2`), join(ex, `${NAME}-disk1.vmdk`)], { encoding: "utf8" });
      expect(r).toMatch(/Images are identical/);
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(out, `${NAME}.qcow2`)], { encoding: "utf8" })) as { format: string; "virtual-size": number };
      expect(info).toMatchObject({ format: "qcow2", "virtual-size": DISK });
    });

    // The qcow2 as a KVM/libvirt user boots it: OVMF without Secure Boot, its own copy of the VARS
    // template (the build's NVRAM is not shipped, so the firmware must find GRUB through the ESP's
    // fallback path, EFI/BOOT/BOOTX64.EFI, as on any new VM).
    it("the exported qcow2 boots under OVMF (no Secure Boot): the build's file, a fresh instance, GPT intact", async () => {
      let vm: BootedVm | undefined;
      try {
        vm = await bootImage(join(out, `${NAME}.qcow2`), { username: "qcowuser", format: "qcow2", firmware: "efi" });
        const sh = vm.sh;
        expect(vm.logs.join("\n")).toContain(`UEFI firmware ${ovmf.code} (${ovmf.origin})`);
        expect((await sh("test -d /sys/firmware/efi && echo uefi")).trim()).toBe("uefi");
        expect((await sh("cat /sys/kernel/security/lockdown")).trim()).toBe("[none] integrity confidentiality");
        expect((await sh("cat /etc/vmkiln-efi")).trim()).toBe("efi-build");
        // cloud-init ran as a new instance for this boot's user; the build user is gone.
        expect((await sh("id -un")).trim()).toBe("qcowuser");
        expect((await sh("getent passwd builder || echo none")).trim()).toBe("none");
        expect(await sh("sudo sgdisk -v /dev/vda")).toMatch(/No problems found/);
        expect((await sh("findmnt -n -o FSTYPE /boot/efi")).trim()).toBe("vfat");
      } finally {
        await vm?.stop();
      }
    });

    // With Secure Boot enforced (efi_secure_boot: the probe picks the enrolled-keys build, SMM on):
    // shim, GRUB and the kernel are Debian's signed ones, reinstalled by grub-install in the build.
    it("the OVA's disk boots under OVMF with Secure Boot enforced: provisioned, grown, GPT intact", async () => {
      let vm: BootedVm | undefined;
      try {
        vm = await bootImage(join(ex, `${NAME}-disk1.vmdk`), { username: "ovauser", format: "vmdk", firmware: "efi", secureBoot: true });
        const sh = vm.sh;
        expect(vm.logs.join("\n")).toMatch(/UEFI firmware \S*(secboot|ms)\S* /);
        expect((await sh("test -d /sys/firmware/efi && echo uefi")).trim()).toBe("uefi");
        // Debian's kernel locks itself down when the firmware says Secure Boot is on ("Kernel is
        // locked down from EFI Secure Boot"); without Secure Boot it says "[none]". (efivarfs is a
        // module this kernel need not have loaded, so mokutil/efivars are not asked.)
        expect((await sh("sudo cat /sys/kernel/security/lockdown")).trim()).toBe("none [integrity] confidentiality");
        expect((await sh("cat /etc/vmkiln-efi")).trim()).toBe("efi-build");
        // update-grub in the build regenerated the configuration GRUB boots from (root=UUID now,
        // where the fixture's build-time configuration said root=PARTUUID).
        expect(Number((await sh("sudo grep -c 'root=UUID=' /boot/grub/grub.cfg")).trim())).toBeGreaterThan(0);
        // Partition 1 is last and was grown to the end of the 3 GiB disk; sgdisk moved the backup GPT.
        const MiB = 1024 * 1024;
        const size = Number((await sh("lsblk -b -n -d -o SIZE /dev/vda1")).trim());
        expect(size).toBeGreaterThan(DISK - 129 * MiB); // it starts at 128 MiB; the backup GPT takes 33 sectors
        expect(size).toBeLessThanOrEqual(DISK - 128 * MiB);
        expect(Number((await sh("findmnt -n -b -o SIZE /")).trim())).toBeGreaterThan(DISK - 256 * MiB); // growfs too
        expect(await sh("sudo sgdisk -v /dev/vda")).toMatch(/No problems found/);
        expect((await sh("findmnt -n -o FSTYPE /boot/efi")).trim()).toBe("vfat");
      } finally {
        await vm?.stop();
      }
    });
  });
});
