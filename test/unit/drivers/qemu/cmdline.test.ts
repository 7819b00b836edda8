import { describe, expect, it } from "vitest";
import { chooseAccel, isKvmCrashLine } from "../../../../drivers/qemu/accel.js";
import { escapeOpt, qemuArgs, type QemuCmdline } from "../../../../drivers/qemu/cmdline.js";
import { convertArgs, overlayArgs, parseProgress } from "../../../../src/artifact/qemu-img.js";

const base: QemuCmdline = {
  name: "vmkiln-b1",
  accel: "tcg",
  machine: "q35",
  cpus: 2,
  memoryMiB: 1024,
  disk: { path: "/b/disk.qcow2", format: "qcow2" },
  cidataIso: "/b/cidata.iso",
  qmpSocket: "/b/qmp.sock",
  consoleLog: "/b/console.log",
  sshHostPort: 40022,
  guestSshPort: 22,
  headless: true,
  firmware: { kind: "bios" },
  extraArgs: [],
};

/** The value that follows `flag` (the n-th occurrence). */
function after(args: string[], flag: string, n = 0): string | undefined {
  const idx = args.flatMap((a, i) => (a === flag ? [i] : []))[n];
  return idx === undefined ? undefined : args[idx + 1];
}

describe("qemuArgs", () => {
  const cases: Array<[string, Partial<QemuCmdline>, (a: string[]) => void]> = [
    ["tcg uses -cpu max and only -accel", {}, (a) => {
      expect(after(a, "-accel")).toBe("tcg");
      expect(after(a, "-cpu")).toBe("max");
      expect(a.join(" ")).not.toContain("accel=");
    }],
    ["kvm uses -cpu host", { accel: "kvm" }, (a) => {
      expect(after(a, "-accel")).toBe("kvm");
      expect(after(a, "-cpu")).toBe("host");
    }],
    ["cpus and memory", { cpus: 4, memoryMiB: 4096 }, (a) => {
      expect(after(a, "-smp")).toBe("4");
      expect(after(a, "-m")).toBe("4096");
    }],
    ["build disk: discard, detect-zeroes, guest flushes end at the host page cache", {}, (a) => {
      expect(after(a, "-drive")).toBe("file=/b/disk.qcow2,if=virtio,format=qcow2,discard=unmap,detect-zeroes=unmap,cache=unsafe");
    }],
    ["cidata read-only", {}, (a) => expect(after(a, "-drive", 1)).toBe("file=/b/cidata.iso,if=virtio,format=raw,readonly=on")],
    ["no cidata drive without a seed", { cidataIso: undefined }, (a) => expect(a.filter((x) => x === "-drive")).toHaveLength(1)],
    ["ssh forwarded on loopback only", { sshHostPort: 2222 }, (a) => expect(after(a, "-netdev")).toBe("user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22")],
    ["qmp socket and serial file", {}, (a) => {
      expect(after(a, "-qmp")).toBe("unix:/b/qmp.sock,server=on,wait=off");
      expect(after(a, "-serial")).toBe("file:/b/console.log");
    }],
    ["headless", {}, (a) => expect(after(a, "-display")).toBe("none")],
    ["efi pflash: code read-only, vars writable", { firmware: { kind: "efi", code: "/ovmf/CODE.fd", vars: "/b/VARS.fd" } }, (a) => {
      expect(after(a, "-drive")).toBe("if=pflash,format=raw,unit=0,readonly=on,file=/ovmf/CODE.fd");
      expect(after(a, "-drive", 1)).toBe("if=pflash,format=raw,unit=1,file=/b/VARS.fd");
    }],
    // Regression: the pflash paths went in unescaped, so a comma in the build dir (VMKILN_TMPDIR) or
    // in efi_firmware_code split the option and QEMU refused to start.
    ["commas in pflash paths are escaped", { firmware: { kind: "efi", code: "/fw,2/CODE.fd", vars: "/b,x/VARS.fd" } }, (a) => {
      expect(after(a, "-drive")).toBe("if=pflash,format=raw,unit=0,readonly=on,file=/fw,,2/CODE.fd");
      expect(after(a, "-drive", 1)).toBe("if=pflash,format=raw,unit=1,file=/b,,x/VARS.fd");
    }],
    ["qcow2 firmware (Fedora) keeps its format", { firmware: { kind: "efi", code: "/f/CODE_4M.qcow2", codeFormat: "qcow2", vars: "/b/VARS.qcow2", varsFormat: "qcow2" } }, (a) => {
      expect(after(a, "-drive")).toBe("if=pflash,format=qcow2,unit=0,readonly=on,file=/f/CODE_4M.qcow2");
      expect(after(a, "-drive", 1)).toBe("if=pflash,format=qcow2,unit=1,file=/b/VARS.qcow2");
    }],
    ["secure boot: SMM on, VARS writable only from SMM", { firmware: { kind: "efi", code: "/o/C.fd", vars: "/b/V.fd", secureBoot: true } }, (a) => {
      expect(after(a, "-machine")).toBe("type=q35,smm=on");
      expect(after(a, "-global")).toBe("driver=cfi.pflash01,property=secure,value=on");
    }],
    ["no SMM without secure boot", { firmware: { kind: "efi", code: "/o/C.fd", vars: "/b/V.fd" } }, (a) => {
      expect(after(a, "-machine")).toBe("type=q35");
      expect(a).not.toContain("-global");
    }],
    ["installer iso as cdrom", { installerIso: "/c/debian.iso" }, (a) => expect(a).toContain("file=/c/debian.iso,media=cdrom,readonly=on")],
    ["no-reboot for installs", { noReboot: true }, (a) => expect(a).toContain("-no-reboot")],
    ["kickstart CD beside the installer", { installerIso: "/c/d.iso", installerMedia: { path: "/b/oemdrv.iso", kind: "cd" } }, (a) => {
      expect(a).toContain("file=/c/d.iso,media=cdrom,readonly=on");
      expect(a).toContain("file=/b/oemdrv.iso,media=cdrom,readonly=on");
    }],
    ["kickstart floppy on its own controller (q35 has none)", { installerMedia: { path: "/b/ks.img", kind: "floppy" } }, (a) => {
      const i = a.indexOf("isa-fdc,id=fdc0");
      expect(i).toBeGreaterThan(0);
      expect(a.slice(i - 1, i + 5)).toEqual(["-device", "isa-fdc,id=fdc0", "-drive", "file=/b/ks.img,if=none,id=fd0,format=raw,readonly=on", "-device", "floppy,drive=fd0,bus=fdc0.0"]);
    }],
    ["no reboot flag and no media by default", {}, (a) => {
      expect(a).not.toContain("-no-reboot");
      expect(a.join(" ")).not.toMatch(/media=cdrom|isa-fdc/);
    }],
    ["extra args last", { extraArgs: ["-device", "virtio-balloon"] }, (a) => expect(a.slice(-2)).toEqual(["-device", "virtio-balloon"])],
    ["commas in paths are escaped", { disk: { path: "/b/a,b.qcow2", format: "qcow2" } }, (a) => expect(after(a, "-drive")).toMatch(/^file=\/b\/a,,b\.qcow2,/)],
    ["entropy device", {}, (a) => expect(a).toContain("virtio-rng-pci")],
    ["process name carries the build id (gc matches it)", {}, (a) => expect(after(a, "-name")).toContain("vmkiln-b1")],
  ];
  for (const [name, patch, check] of cases) it(name, () => check(qemuArgs({ ...base, ...patch })));
  it("escapeOpt doubles commas", () => expect(escapeOpt("a,b,,c")).toBe("a,,b,,,,c"));
});

describe("chooseAccel", () => {
  const table: Array<[string, "auto" | "kvm" | "tcg", { kvmDevice: boolean; kvmPvm: boolean }, "kvm" | "tcg", RegExp | undefined, boolean]> = [
    ["auto with real KVM", "auto", { kvmDevice: true, kvmPvm: false }, "kvm", undefined, true],
    ["auto on kvm-pvm falls back loudly", "auto", { kvmDevice: true, kvmPvm: true }, "tcg", /kvm-pvm.*falling back to TCG/, false],
    ["auto without /dev/kvm falls back loudly", "auto", { kvmDevice: false, kvmPvm: false }, "tcg", /not available.*falling back to TCG/, false],
    ["tcg forced", "tcg", { kvmDevice: true, kvmPvm: false }, "tcg", undefined, false],
    ["kvm forced on kvm-pvm warns", "kvm", { kvmDevice: true, kvmPvm: true }, "kvm", /crash/, false],
    ["kvm forced without /dev/kvm warns", "kvm", { kvmDevice: false, kvmPvm: false }, "kvm", /not accessible/, false],
  ];
  for (const [name, req, probe, accel, warn, fallback] of table) {
    it(name, () => {
      const c = chooseAccel(req, probe);
      expect(c.accel).toBe(accel);
      expect(c.fallbackToTcgOnCrash).toBe(fallback);
      if (warn) expect(c.warning).toMatch(warn);
      else expect(c.warning).toBeUndefined();
    });
  }
  it("recognises KVM crash lines", () => {
    expect(isKvmCrashLine("KVM internal error. Suberror: 1")).toBe(true);
    expect(isKvmCrashLine("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0")).toBe(true);
    expect(isKvmCrashLine("VNC server running")).toBe(false);
  });
});

describe("qemu-img argv", () => {
  it("overlay names the backing format (required since QEMU 6.1)", () => {
    expect(overlayArgs("/c/src.qcow2", "qcow2", "/b/disk.qcow2", 4 << 30)).toEqual(["create", "-f", "qcow2", "-b", "/c/src.qcow2", "-F", "qcow2", "/b/disk.qcow2", String(4 << 30)]);
  });
  it("compressed qcow2 with zstd and parallel coroutines", () => {
    expect(convertArgs({ src: "a", dst: "b", format: "qcow2", compression: "zstd", srcFormat: "qcow2" })).toEqual(["convert", "-p", "-f", "qcow2", "-O", "qcow2", "-c", "-o", "compression_type=zstd", "-m", "8", "-W", "a", "b"]);
  });
  it("uncompressed qcow2", () => {
    expect(convertArgs({ src: "a", dst: "b", format: "qcow2", compression: "none" })).toEqual(["convert", "-p", "-O", "qcow2", "-m", "8", "-W", "a", "b"]);
  });
  it("streamOptimized vmdk is written in order (no -W) with the LSI Logic adapter", () => {
    expect(convertArgs({ src: "a", dst: "b", format: "vmdk", subformat: "streamOptimized", adapterType: "lsilogic", hwVersion: 14 })).toEqual([
      "convert", "-p", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic,hwversion=14", "a", "b",
    ]);
  });
  it("parses progress", () => {
    expect(parseProgress("    (45.12/100%)")).toBe(45.12);
    expect(parseProgress("    (100.00/100%)")).toBe(100);
    expect(parseProgress("something else")).toBeUndefined();
  });
});
