// The Linux kernel's isofs reads vmkiln's ISO 9660 writer (src/media/iso9660.ts) back: names and
// bytes. It was a unit test that skipped itself whenever the loop mount failed, and this host's
// kernel (a Firecracker kernel without isofs, no module to load) always failed it, so the check never
// ran. Now it never skips: a loop mount where the running kernel has isofs (modprobe'd if needed),
// otherwise the same check with a Debian kernel in the libguestfs appliance (guestfish, a QEMU VM:
// this file belongs to the VM-booting integration tier). Any failure fails.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { buildIso, type IsoFile } from "../../../src/media/iso9660.js";
import { requireTools } from "../../unit/media/readers.js";
import { tmp } from "../../unit/artifact/helpers.js";

const t = tmp("vmkiln-iso-kernel-");
afterAll(() => t.cleanup());

const FILES: IsoFile[] = [
  { name: "meta-data", content: "instance-id: iid-1\nlocal-hostname: kiln\n" },
  { name: "user-data", content: "#cloud-config\nusers: []\n" },
  { name: "network-config", content: "" },
  { name: "big.bin", content: Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff)) },
  { name: "a rather long name, with spaces.yaml", content: "x: 1\n" },
];

/** Whether the running kernel can mount iso9660 (after trying to load the module). */
function hostKernelHasIsofs(): boolean {
  const listed = () => readFileSync("/proc/filesystems", "utf8").split("\n").some((l) => l.trim().endsWith("iso9660"));
  if (listed()) return true;
  spawnSync("modprobe", ["isofs"], { stdio: "ignore" });
  return listed();
}

/** name → bytes as the kernel reads them, through a loop mount on this host. */
function readWithLoopMount(iso: string): Map<string, Buffer> {
  expect(process.getuid?.(), "a loop mount needs root (the test tiers run as root, like CI)").toBe(0);
  requireTools("mount", "umount");
  const mnt = join(t.dir, "mnt");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-o", "loop,ro", "-t", "iso9660", iso, mnt], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    throw new Error(`mount -t iso9660 refused our image: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  try {
    return new Map(readdirSync(mnt).map((n) => [n, readFileSync(join(mnt, n))]));
  } finally {
    execFileSync("umount", [mnt], { stdio: "ignore" });
  }
}

/** The same, read by the kernel inside the libguestfs appliance. */
function readWithGuestfish(iso: string): Map<string, Buffer> {
  requireTools("guestfish");
  const out = join(t.dir, "out");
  mkdirSync(out);
  const script = ["run", "mount-ro /dev/sda /", ...FILES.map((f) => `download "/${f.name}" "${join(out, f.name)}"`), "ls /"].join("\n");
  const ls = execFileSync("guestfish", ["--ro", "-a", iso], { input: script, encoding: "utf8", env: { ...process.env, LIBGUESTFS_BACKEND: "direct" }, timeout: 600_000 });
  const names = ls.split("\n").filter(Boolean);
  return new Map(names.map((n) => [n, readFileSync(join(out, n))]));
}

it("the Linux kernel reads the real names and the bytes", () => {
  const iso = join(t.dir, "seed.iso");
  writeFileSync(iso, buildIso(FILES, { volumeId: "cidata", date: new Date("2024-05-06T07:08:09Z") }));
  const viaHost = hostKernelHasIsofs();
  console.log(`iso-kernel: reading with ${viaHost ? "this host's kernel (loop mount)" : "the libguestfs appliance's kernel (this kernel has no isofs)"}`);
  const got = viaHost ? readWithLoopMount(iso) : readWithGuestfish(iso);
  expect([...got.keys()].sort()).toEqual(FILES.map((f) => f.name).sort());
  for (const f of FILES) expect(got.get(f.name)!.equals(Buffer.from(f.content)), f.name).toBe(true);
}, 900_000);
