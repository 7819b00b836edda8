// OVMF probing against fake directory trees shaped like each distribution's packages (file names
// and sizes as the packages ship them), through the `root` prefix.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  concreteMachine,
  copyVarsTemplate,
  descriptorMismatch,
  explicitOvmf,
  globMatch,
  probeOvmf,
} from "../../../../drivers/qemu/ovmf.js";
import { UserError } from "../../../../src/errors.js";

// Real sizes: OVMF is one 2 or 4 MiB flash image cut into VARS + CODE.
const CODE_4M = 3653632;
const VARS_4M = 540672;
const CODE_2M = 1966080;
const VARS_2M = 131072;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "vmkiln-ovmf-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function file(path: string, size: number): void {
  const abs = join(root, path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, Buffer.alloc(size, path.length % 251));
}

function descriptor(path: string, d: Record<string, unknown> | string): void {
  const abs = join(root, path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, typeof d === "string" ? d : JSON.stringify(d, null, 2));
}

/** A descriptor shaped like Debian's /usr/share/qemu/firmware/*.json. */
function flash(code: string, vars: string, features: string[] = ["acpi-s3", "verbose-dynamic"], machines = ["pc-i440fx-*", "pc-q35-*"], format = "raw") {
  return {
    description: "test firmware",
    "interface-types": ["uefi"],
    mapping: { device: "flash", executable: { filename: code, format }, "nvram-template": { filename: vars, format } },
    targets: [{ architecture: "x86_64", machines }],
    features,
    tags: [],
  };
}

/** Debian 12's ovmf package: its files and its three descriptors. */
function debianTree(): void {
  file("/usr/share/OVMF/OVMF_CODE_4M.fd", CODE_4M);
  file("/usr/share/OVMF/OVMF_VARS_4M.fd", VARS_4M);
  file("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", CODE_4M);
  file("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", CODE_4M);
  file("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", VARS_4M);
  file("/usr/share/OVMF/OVMF_CODE.fd", CODE_2M);
  file("/usr/share/OVMF/OVMF_VARS.fd", VARS_2M);
  descriptor("/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json",
    flash("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", ["acpi-s3", "amd-sev", "enrolled-keys", "requires-smm", "secure-boot", "verbose-dynamic"], ["pc-q35-*"]));
  descriptor("/usr/share/qemu/firmware/50-edk2-x86_64-secure.json",
    flash("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", ["acpi-s3", "amd-sev", "requires-smm", "secure-boot", "verbose-dynamic"], ["pc-q35-*"]));
  descriptor("/usr/share/qemu/firmware/60-edk2-x86_64.json",
    flash("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", ["acpi-s3", "amd-sev", "verbose-dynamic"]));
}

const probe = (o: { machine?: string; secureBoot?: boolean; env?: Record<string, string> } = {}) =>
  probeOvmf({ root, machine: o.machine ?? "q35", secureBoot: o.secureBoot ?? false, env: o.env ?? {} });

function probeError(o: Parameters<typeof probe>[0] = {}): UserError {
  try {
    probe(o);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error("probeOvmf did not throw");
}

describe("probeOvmf: descriptors (QEMU docs/interop/firmware.json)", () => {
  it("Debian: the plain 4M build from 60-edk2-x86_64.json, never a Secure Boot one unasked", () => {
    debianTree();
    const fw = probe();
    expect(fw).toMatchObject({
      code: join(root, "/usr/share/OVMF/OVMF_CODE_4M.fd"),
      varsTemplate: join(root, "/usr/share/OVMF/OVMF_VARS_4M.fd"),
      codeFormat: "raw",
      varsFormat: "raw",
      secureBoot: false,
      origin: join(root, "/usr/share/qemu/firmware/60-edk2-x86_64.json"),
    });
  });

  it("Debian with secure boot asked: the enrolled-keys build (SMM)", () => {
    debianTree();
    const fw = probe({ secureBoot: true });
    expect(fw.code).toBe(join(root, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"));
    expect(fw.varsTemplate).toBe(join(root, "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"));
    expect(fw.secureBoot).toBe(true);
  });

  it("the machine type must match a target glob (an i440fx-only build does not boot q35)", () => {
    file("/fw/CODE.fd", CODE_4M);
    file("/fw/VARS.fd", VARS_4M);
    descriptor("/usr/share/qemu/firmware/50-pc-only.json", flash("/fw/CODE.fd", "/fw/VARS.fd", [], ["pc-i440fx-*"]));
    expect(probeError().message).toMatch(/none found/);
    expect(probe({ machine: "pc" }).code).toBe(join(root, "/fw/CODE.fd"));
    expect(probe({ machine: "pc-i440fx-7.2" }).code).toBe(join(root, "/fw/CODE.fd"));
  });

  it("a sysadmin's empty file in /etc/qemu/firmware hides the distro's descriptor of that name", () => {
    debianTree();
    descriptor("/etc/qemu/firmware/60-edk2-x86_64.json", "");
    // Hidden: the probe falls back to the well-known paths, which find the same Debian files.
    expect(probe().origin).toBe("well-known path (Debian/Ubuntu)");
  });

  it("a more specific directory's file replaces the same name, and a lower number sorts first", () => {
    debianTree();
    file("/opt/fw/CODE.fd", CODE_2M);
    file("/opt/fw/VARS.fd", VARS_2M);
    descriptor("/etc/qemu/firmware/60-edk2-x86_64.json", flash("/opt/fw/CODE.fd", "/opt/fw/VARS.fd"));
    expect(probe().code).toBe(join(root, "/opt/fw/CODE.fd"));
    file("/home/u/fw/CODE.fd", CODE_4M);
    file("/home/u/fw/VARS.fd", VARS_4M);
    descriptor("/home/u/.config/qemu/firmware/10-mine.json", flash("/home/u/fw/CODE.fd", "/home/u/fw/VARS.fd"));
    expect(probe({ env: { HOME: "/home/u" } }).code).toBe(join(root, "/home/u/fw/CODE.fd"));
    descriptor("/xdg/qemu/firmware/05-xdg.json", flash("/opt/fw/CODE.fd", "/opt/fw/VARS.fd"));
    expect(probe({ env: { HOME: "/home/u", XDG_CONFIG_HOME: "/xdg" } }).origin).toBe(join(root, "/xdg/qemu/firmware/05-xdg.json"));
  });

  it("Fedora's qcow2 builds keep their format", () => {
    file("/usr/share/edk2/ovmf/OVMF_CODE_4M.qcow2", 200_000);
    file("/usr/share/edk2/ovmf/OVMF_VARS_4M.qcow2", 90_000);
    descriptor("/usr/share/qemu/firmware/50-edk2-ovmf-4m-qcow2-x64-nosb.json",
      flash("/usr/share/edk2/ovmf/OVMF_CODE_4M.qcow2", "/usr/share/edk2/ovmf/OVMF_VARS_4M.qcow2", ["acpi-s3", "amd-sev", "verbose-dynamic"], ["pc-q35-*"], "qcow2"));
    expect(probe()).toMatchObject({ codeFormat: "qcow2", varsFormat: "qcow2" });
  });

  it("skips descriptors naming missing files, unreadable JSON and other kinds of firmware, and says so", () => {
    file("/usr/share/edk2/x64/OVMF_CODE.4m.fd", CODE_4M);
    file("/usr/share/edk2/x64/OVMF_VARS.4m.fd", VARS_4M);
    descriptor("/usr/share/qemu/firmware/10-broken.json", "{ not json");
    descriptor("/usr/share/qemu/firmware/20-gone.json", flash("/nowhere/CODE.fd", "/nowhere/VARS.fd"));
    descriptor("/usr/share/qemu/firmware/30-seabios.json", { "interface-types": ["bios"], mapping: { device: "memory", filename: "/usr/share/seabios/bios.bin" }, targets: [{ architecture: "x86_64", machines: ["pc-*"] }] });
    descriptor("/usr/share/qemu/firmware/40-sev.json", { ...flash("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd", ["amd-sev", "amd-sev-es"]) });
    descriptor("/usr/share/qemu/firmware/45-stateless.json", { ...flash("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"), mapping: { device: "flash", mode: "stateless", executable: { filename: "/usr/share/edk2/x64/OVMF.4m.fd", format: "raw" } } });
    const fw = probe();
    expect(fw.origin).toBe("well-known path (Arch)");
    // The reasons reach the user only when nothing fits:
    rmSync(join(root, "usr/share/edk2"), { recursive: true });
    const msg = probeError().message;
    expect(msg).toContain("10-broken.json: unreadable");
    expect(msg).toContain("20-gone.json: names");
    expect(msg).not.toContain("30-seabios.json");
  });
});

describe("descriptors that are not what they should be (fuzz counterexamples)", () => {
  // Found by test/unit/fuzz/ovmf-descriptor.fuzz.test.ts: a descriptor file holding `null` crashed
  // the probe with a TypeError (and a stack trace) instead of being skipped.
  it("a file holding JSON null is skipped, not a crash", () => {
    file("/fw/CODE.fd", CODE_2M);
    file("/fw/VARS.fd", VARS_2M);
    descriptor("/usr/share/qemu/firmware/10-null.json", "null");
    descriptor("/usr/share/qemu/firmware/50-ok.json", flash("/fw/CODE.fd", "/fw/VARS.fd"));
    expect(probe().origin).toBe(join(root, "/usr/share/qemu/firmware/50-ok.json"));
    expect(descriptorMismatch(null as never, { machine: "q35", secureBoot: false })).toBe("not a JSON object");
  });

  it("targets that are not a list of objects are skipped, not a crash", () => {
    const d = flash("/fw/CODE.fd", "/fw/VARS.fd");
    for (const targets of [7, { architecture: "x86_64" }, [null], ["x86_64"]]) {
      expect(descriptorMismatch({ ...d, targets } as never, { machine: "q35", secureBoot: false })).toMatch(/no x86_64 target/);
    }
  });
});

describe("probeOvmf: well-known paths (no descriptors)", () => {
  const cases: Array<[string, string, string, number, number, string]> = [
    ["Debian/Ubuntu 4M", "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", CODE_4M, VARS_4M, "Debian/Ubuntu"],
    ["Debian 10 / Ubuntu 20.04 2M", "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd", CODE_2M, VARS_2M, "Debian/Ubuntu, RHEL"],
    ["Fedora/RHEL", "/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd", CODE_4M, VARS_4M, "Fedora/RHEL"],
    ["Arch", "/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd", CODE_4M, VARS_4M, "Arch"],
    ["Arch before 202202", "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd", CODE_2M, VARS_2M, "Arch (older)"],
    ["QEMU's own install", "/usr/share/qemu/edk2-x86_64-code.fd", "/usr/share/qemu/edk2-i386-vars.fd", CODE_4M, VARS_4M, "QEMU"],
  ];
  for (const [name, code, vars, cs, vs, distro] of cases) {
    it(name, () => {
      file(code, cs);
      file(vars, vs);
      expect(probe()).toMatchObject({ code: join(root, code), varsTemplate: join(root, vars), origin: `well-known path (${distro})`, secureBoot: false });
    });
  }

  it("pairs CODE with the VARS of its own size: a 4M CODE never boots on a 2M VARS", () => {
    file("/usr/share/OVMF/OVMF_CODE_4M.fd", CODE_4M);
    file("/usr/share/OVMF/OVMF_VARS_4M.fd", VARS_2M); // a broken install
    file("/usr/share/edk2/ovmf/OVMF_CODE.fd", CODE_2M);
    file("/usr/share/edk2/ovmf/OVMF_VARS.fd", VARS_2M);
    expect(probe().code).toBe(join(root, "/usr/share/edk2/ovmf/OVMF_CODE.fd"));
  });

  it("Secure Boot only when asked, and only with enrolled keys", () => {
    file("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", CODE_4M);
    file("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", VARS_4M);
    expect(probeError().message).toMatch(/UEFI firmware \(OVMF\).*none found/);
    expect(probe({ secureBoot: true })).toMatchObject({ code: join(root, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"), secureBoot: true });
  });
});

describe("probeOvmf: nothing found", () => {
  it("is bad input (exit 2) naming every place searched and the install command", () => {
    const err = probeError({ env: { HOME: "/home/u" } });
    expect(err.exitCode).toBe(2);
    expect(err.code).toBe("OVMF_MISSING");
    for (const p of [
      "/usr/share/qemu/firmware/*.json",
      "/etc/qemu/firmware/*.json",
      "/home/u/.config/qemu/firmware/*.json",
      "/usr/share/OVMF/OVMF_CODE_4M.fd + /usr/share/OVMF/OVMF_VARS_4M.fd",
      "/usr/share/edk2/ovmf/OVMF_CODE.fd",
      "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
      "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
    ]) expect(err.message).toContain(p);
    expect(err.message).not.toContain(".ms.fd"); // Secure Boot files are not what was asked for
    expect(err.hint).toMatch(/apt-get install ovmf/);
    expect(err.hint).toMatch(/efi_firmware_code/);
  });

  it("lists a size mismatch as the reason a present pair was refused", () => {
    file("/usr/share/OVMF/OVMF_CODE_4M.fd", CODE_4M);
    file("/usr/share/OVMF/OVMF_VARS_4M.fd", VARS_2M);
    expect(probeError().message).toMatch(/Rejected: .*OVMF_CODE_4M\.fd: .*not halves of one 1, 2 or 4 MiB OVMF build/);
  });
});

describe("explicitOvmf (drivers.qemu.efi_firmware_code / efi_firmware_vars)", () => {
  it("accepts a matching pair", () => {
    file("/a/CODE.fd", CODE_2M);
    file("/a/VARS.fd", VARS_2M);
    expect(explicitOvmf(join(root, "/a/CODE.fd"), join(root, "/a/VARS.fd"), false)).toMatchObject({ codeFormat: "raw", origin: "drivers.qemu.efi_firmware_code" });
  });

  it("names the field of a missing file", () => {
    file("/a/CODE.fd", CODE_2M);
    expect(() => explicitOvmf(join(root, "/a/CODE.fd"), join(root, "/a/nope.fd"), false)).toThrow(/drivers\.qemu\.efi_firmware_vars: not a readable file/);
    expect(() => explicitOvmf(join(root, "/a"), join(root, "/a/CODE.fd"), false)).toThrow(/drivers\.qemu\.efi_firmware_code/);
  });

  it("refuses a 4M CODE with a 2M VARS, and the same file twice (exit 2)", () => {
    file("/a/CODE_4M.fd", CODE_4M);
    file("/a/VARS.fd", VARS_2M);
    let err: unknown;
    try {
      explicitOvmf(join(root, "/a/CODE_4M.fd"), join(root, "/a/VARS.fd"), false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toMatch(/do not belong together/);
    expect(() => explicitOvmf(join(root, "/a/VARS.fd"), join(root, "/a/VARS.fd"), false)).toThrow(/same file/);
  });
});

describe("explicitOvmf: a named pair checked against what its descriptor says", () => {
  const err = (f: () => unknown): UserError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).exitCode).toBe(2);
      return e as UserError;
    }
    throw new Error("explicitOvmf did not throw");
  };
  const explicit = (code: string, vars: string, secureBoot: boolean) => explicitOvmf(join(root, code), join(root, vars), secureBoot, { root, env: {} });

  it("refuses efi_secure_boot: true on a build without Secure Boot and SMM (it would boot, enforcing nothing)", () => {
    debianTree();
    const e = err(() => explicit("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", true));
    expect(e.message).toMatch(/^drivers\.qemu\.efi_secure_boot: \S*OVMF_CODE_4M\.fd is not a Secure Boot build/);
    expect(e.message).toContain("60-edk2-x86_64.json");
    expect(e.message).not.toContain("\n");
  });

  it("refuses efi_secure_boot: true with a VARS template without enrolled keys (Secure Boot would stay in setup mode)", () => {
    debianTree();
    const e = err(() => explicit("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", true));
    expect(e.message).toMatch(/^drivers\.qemu\.efi_secure_boot: \S*OVMF_VARS_4M\.fd has no keys enrolled/);
  });

  it("refuses a build that requires SMM without efi_secure_boot (only that turns SMM on)", () => {
    debianTree();
    const e = err(() => explicit("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", false));
    expect(e.message).toMatch(/^drivers\.qemu\.efi_firmware_code: \S*OVMF_CODE_4M\.ms\.fd needs SMM/);
    expect(e.hint).toMatch(/efi_secure_boot: true/);
  });

  it("knows a file through a symlink to it, as Debian ships OVMF_CODE_4M.ms.fd", () => {
    debianTree();
    rmSync(join(root, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"));
    symlinkSync("OVMF_CODE_4M.secboot.fd", join(root, "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"));
    // The descriptor names the link; the template names the file it points at.
    err(() => explicit("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", false));
    expect(explicit("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", true)).toMatchObject({ secureBoot: true });
  });

  it("without a descriptor, the well-known Secure Boot file names count", () => {
    file("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", CODE_4M);
    file("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", VARS_4M);
    err(() => explicit("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", false));
    expect(explicit("/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", true)).toMatchObject({ secureBoot: true });
  });

  it("takes an unknown build as named, either way", () => {
    file("/opt/fw/CODE.fd", CODE_2M);
    file("/opt/fw/VARS.fd", VARS_2M);
    expect(explicit("/opt/fw/CODE.fd", "/opt/fw/VARS.fd", false)).toMatchObject({ secureBoot: false });
    expect(explicit("/opt/fw/CODE.fd", "/opt/fw/VARS.fd", true)).toMatchObject({ secureBoot: true });
  });

  it("refuses CODE and VARS that are one file under two names (a symlink), qcow2 included", () => {
    file("/opt/fw/CODE.qcow2", 65536);
    symlinkSync("CODE.qcow2", join(root, "/opt/fw/VARS.qcow2"));
    expect(err(() => explicit("/opt/fw/CODE.qcow2", "/opt/fw/VARS.qcow2", false)).message).toMatch(/same file/);
  });
});

describe("copyVarsTemplate", () => {
  it("makes a private, writable copy and leaves a read-only template as it was", async () => {
    file("/store/OVMF_VARS.fd", VARS_2M);
    const template = join(root, "/store/OVMF_VARS.fd");
    chmodSync(template, 0o444); // a Nix/Guix store file
    const copy = join(root, "vm-vars.fd");
    await copyVarsTemplate(template, copy);
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    expect(readFileSync(copy).equals(readFileSync(template))).toBe(true);
    expect(statSync(template).mode & 0o777).toBe(0o444);
  });
});

describe("matching helpers", () => {
  it("globMatch: fnmatch * ? [..] [!..], literal dots", () => {
    expect(globMatch("pc-q35-*", "pc-q35-7.2")).toBe(true);
    expect(globMatch("pc-q35-*", "pc-i440fx-7.2")).toBe(false);
    expect(globMatch("pc-q35-?.?", "pc-q35-7.2")).toBe(true);
    expect(globMatch("pc-q35-7.2", "pc-q35-7x2")).toBe(false);
    expect(globMatch("pc-[iq]*", "pc-q35-8.0")).toBe(true);
    expect(globMatch("pc-[!q]*", "pc-q35-8.0")).toBe(false);
    expect(globMatch("[", "[")).toBe(true);
    expect(globMatch("a(b)+c", "a(b)+c")).toBe(true);
  });

  it("machine aliases match the versioned globs", () => {
    expect(concreteMachine("q35")).toMatch(/^pc-q35-/);
    expect(concreteMachine("pc")).toMatch(/^pc-i440fx-/);
    expect(concreteMachine("pc-q35-7.2")).toBe("pc-q35-7.2");
  });

  it("descriptorMismatch reasons", () => {
    const ok = flash("/c", "/v");
    expect(descriptorMismatch(ok, { machine: "q35", secureBoot: false })).toBeUndefined();
    expect(descriptorMismatch({ ...ok, "interface-types": ["bios"] }, { machine: "q35", secureBoot: false })).toBe("not UEFI");
    expect(descriptorMismatch({ ...ok, targets: [{ architecture: "aarch64", machines: ["virt-*"] }] }, { machine: "q35", secureBoot: false })).toMatch(/no x86_64 target/);
    expect(descriptorMismatch(flash("/c", "/v", ["secure-boot", "requires-smm"]), { machine: "q35", secureBoot: false })).toBe("Secure Boot build");
    expect(descriptorMismatch(flash("/c", "/v", ["secure-boot", "requires-smm"]), { machine: "q35", secureBoot: true })).toMatch(/enrolled keys/);
    expect(descriptorMismatch(flash("/c", "/v", [], ["pc-q35-*"], "vmdk"), { machine: "q35", secureBoot: false })).toMatch(/flash format/);
  });
});
