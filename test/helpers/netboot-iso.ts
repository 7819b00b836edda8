// A bootable Debian 12 installer ISO for the ISO-install tests, made from Debian's netboot
// installer package (kernel + initrd) with xorriso + isolinux, and cached under
// ~/.cache/vmkiln/fixtures keyed by the package versions and this recipe. A test helper, so it
// spawns directly instead of going through src/exec/run.ts (it must not depend on the code under test).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const DI_PACKAGE = "debian-installer-12-netboot-amd64";
const DI_DIR = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
const ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin";
const LDLINUX = "/usr/lib/syslinux/modules/bios/ldlinux.c32";

/**
 * isolinux shows a `boot:` prompt (on the VGA console and on the serial port) and waits for ever
 * (TIMEOUT 0), so a boot command typed after any boot_wait lands there. Whatever is typed after the
 * label is appended to the kernel command line, e.g. `install auto=true priority=critical url=…`.
 */
export const ISOLINUX_CFG = [
  "SERIAL 0 115200",
  "PROMPT 1",
  "TIMEOUT 0",
  "DEFAULT install",
  "LABEL install",
  "  KERNEL /linux",
  // The installer's own console on the serial port: the test and a human can follow it in console.log.
  "  APPEND initrd=/initrd.gz console=ttyS0,115200n8",
  "",
].join("\n");

function packageVersion(name: string): string {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Version}", name], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${name} is not installed (apt-get install ${name}); it is listed in .ci/install-deps.sh`);
  return r.stdout.trim();
}

/** Absolute path of the cached netboot ISO, building it on a miss (about a second). */
export function ensureNetbootIso(): string {
  const versions = [DI_PACKAGE, "isolinux", "syslinux-common"].map((p) => `${p}=${packageVersion(p)}`).join(" ");
  const key = createHash("sha256").update(versions).update(ISOLINUX_CFG).digest("hex").slice(0, 16);
  const dir = process.env.VMKILN_FIXTURE_DIR ?? join(homedir(), ".cache/vmkiln/fixtures");
  const iso = join(dir, `debian-12-netboot-${key}.iso`);
  if (existsSync(iso)) return iso;
  mkdirSync(dir, { recursive: true });
  const stage = mkdtempSync(join(dir, ".netboot-stage-"));
  const tmp = `${iso}.${process.pid}.tmp`;
  try {
    for (const [src, name] of [
      [join(DI_DIR, "linux"), "linux"],
      [join(DI_DIR, "initrd.gz"), "initrd.gz"],
      [ISOLINUX_BIN, "isolinux.bin"],
      [LDLINUX, "ldlinux.c32"],
    ] as const) {
      if (!existsSync(src)) throw new Error(`${src} is missing: apt-get install ${DI_PACKAGE} isolinux syslinux-common`);
      copyFileSync(src, join(stage, name));
    }
    writeFileSync(join(stage, "isolinux.cfg"), ISOLINUX_CFG);
    // El Torito no-emulation boot with isolinux (isolinux.bin needs the boot info table).
    const args = ["-as", "mkisofs", "-quiet", "-o", tmp, "-V", "VMKILN_D12_NETBOOT", "-J", "-r",
      "-b", "isolinux.bin", "-c", "boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", stage];
    const r = spawnSync("xorriso", args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`xorriso ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
    renameSync(tmp, iso); // atomic: a concurrent test sees either no ISO or a whole one
    return iso;
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
}

/** sha256 of a file, for templates that pin the ISO's checksum. */
export function sha256Of(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}
