// Pure argv builder for qemu-system (docs/architecture.md "The exec wrapper"): every flag here is checked by
// a table test; nothing in this file touches the system.

export interface QemuCmdline {
  name: string;
  accel: "kvm" | "tcg";
  machine: string;
  cpus: number;
  memoryMiB: number;
  disk: { path: string; format: string };
  cidataIso?: string | undefined;
  installerIso?: string | undefined;
  /** Kickstart/preseed media (OEMDRV, cidata) attached during an install. */
  installerMedia?: { path: string; kind: "cd" | "floppy" } | undefined;
  qmpSocket: string;
  consoleLog: string;
  sshHostPort: number;
  guestSshPort: number;
  headless: boolean;
  firmware: { kind: "bios" } | { kind: "efi"; code: string; vars: string };
  /** Exit instead of rebooting (used to detect the end of an OS install). */
  noReboot?: boolean;
  extraArgs: string[];
}

export function qemuArgs(c: QemuCmdline): string[] {
  const args: string[] = [
    "-name", `${c.name},process=${c.name}`,
    "-machine", `type=${c.machine}`,
    // Only -accel: combining it with -machine accel= makes QEMU exit (reference/qemu-cloud-init.md).
    "-accel", c.accel,
    // -cpu host needs KVM; under TCG "max" enables every feature TCG can emulate (a stock Debian
    // kernel needs x86-64-v2 instructions that the default qemu64 model lacks).
    "-cpu", c.accel === "kvm" ? "host" : "max",
    "-smp", String(c.cpus),
    "-m", String(c.memoryMiB),
    "-nodefaults",
    "-no-user-config",
  ];
  if (c.headless) args.push("-display", "none", "-vga", "std");
  else args.push("-vga", "std");
  args.push(
    "-serial", `file:${c.consoleLog}`,
    "-qmp", `unix:${c.qmpSocket},server=on,wait=off`,
  );
  if (c.firmware.kind === "efi") {
    args.push(
      "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${c.firmware.code}`,
      "-drive", `if=pflash,format=raw,unit=1,file=${c.firmware.vars}`,
    );
  }
  // discard=unmap + detect-zeroes=unmap let the guest's fstrim shrink the image we export.
  // cache=unsafe: the guest's flushes stop at the host page cache (no fdatasync; ~4-9 ms each on a
  // busy host, issue 7). Still safe for the artifact: QEMU writes its qcow2 metadata out to the file
  // on every guest flush and at exit even with cache=unsafe (block/io.c bdrv_co_flush: "write back
  // cached data to the OS even with cache=unsafe"), and the export reads the disk only after QEMU
  // has exited; a host crash, the only case it loses, ends the build anyway.
  args.push(
    "-drive", `file=${escapeOpt(c.disk.path)},if=virtio,format=${c.disk.format},discard=unmap,detect-zeroes=unmap,cache=unsafe`,
  );
  if (c.cidataIso) args.push("-drive", `file=${escapeOpt(c.cidataIso)},if=virtio,format=raw,readonly=on`);
  if (c.installerIso) args.push("-drive", `file=${escapeOpt(c.installerIso)},media=cdrom,readonly=on`);
  if (c.installerMedia?.kind === "cd") args.push("-drive", `file=${escapeOpt(c.installerMedia.path)},media=cdrom,readonly=on`);
  if (c.installerMedia?.kind === "floppy") {
    // q35 has no floppy controller of its own (and `-drive if=floppy` is refused there): add one.
    args.push(
      "-device", "isa-fdc,id=fdc0",
      "-drive", `file=${escapeOpt(c.installerMedia.path)},if=none,id=fd0,format=raw,readonly=on`,
      "-device", "floppy,drive=fd0,bus=fdc0.0",
    );
  }
  args.push(
    "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${c.sshHostPort}-:${c.guestSshPort}`,
    "-device", "virtio-net-pci,netdev=n0",
    // Early-boot key generation (sshd host keys) stalls without entropy.
    "-device", "virtio-rng-pci",
  );
  if (c.noReboot) args.push("-no-reboot");
  args.push(...c.extraArgs);
  return args;
}

/** QEMU option values escape a comma by doubling it. */
export function escapeOpt(value: string): string {
  return value.replace(/,/g, ",,");
}
