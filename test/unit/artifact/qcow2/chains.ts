// Builds real qcow2 chains with qemu-img/qemu-io and checks flattened output with them (tests may
// spawn directly). Guest content is built from random bytes, zeros and repeated patterns so that
// compressed, incompressible (stored raw) and zero clusters all occur.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";

export const MiB = 1024 * 1024;

export function run(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** `qemu-io` commands against an image, e.g. ["write -P 0xab 0 1M", "discard 1M 64k"]. */
export function qemuIo(image: string, commands: string[], format?: string): void {
  const args: string[] = [];
  if (format) args.push("-f", format);
  for (const c of commands) args.push("-c", c);
  run("qemu-io", [...args, image]);
}

/** A file of random bytes for `qemu-io -c 'write -s file off len'`. */
export function randomFile(dir: string, name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, randomBytes(bytes));
  return p;
}

/**
 * A raw disk of `size` bytes with random data, repeated patterns, text-like (compressible but not
 * constant) data and zeros at known places.
 */
export function makeRawBase(dir: string, name: string, size: number): string {
  const raw = join(dir, name);
  run("qemu-img", ["create", "-q", "-f", "raw", raw, String(size)]);
  const rnd = randomFile(dir, `${name}.rnd`, 3 * MiB);
  const text = join(dir, `${name}.txt`);
  // Compressible but not trivially so: lines of counters, like logs or package lists.
  writeFileSync(text, Array.from({ length: 60_000 }, (_, i) => `line ${i} value ${(i * 2654435761) % 1000003}\n`).join("").slice(0, 2 * MiB));
  qemuIo(
    raw,
    [
      `write -s ${rnd} 0 3M`, // incompressible: QEMU stores these clusters uncompressed
      "write -P 0xab 4M 2M", // a repeated byte: compresses to almost nothing
      `write -s ${text} 8M 2M`,
      "write -P 0x5c 12M 64k",
      `write -s ${text} ${size - 2 * MiB} 2M`, // reaches the end of the base
    ],
    "raw",
  );
  return raw;
}

export function convertCompressed(src: string, dst: string, extra: string[] = []): string {
  run("qemu-img", ["convert", "-c", "-O", "qcow2", ...extra, src, dst]);
  return dst;
}

export function overlay(base: string, baseFormat: string, path: string, size?: number): string {
  run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, path, ...(size === undefined ? [] : [String(size)])]);
  return path;
}

interface Info {
  "virtual-size": number;
  "cluster-size": number;
  "backing-filename"?: string;
  "format-specific"?: { data?: { "compression-type"?: string } };
}

export function info(path: string): Info {
  return JSON.parse(run("qemu-img", ["info", "--output=json", path])) as Info;
}

/** What every flattened image must satisfy; returns out size / qemu-img convert -c size. */
export function checkFlattened(top: string, out: string, dir: string): number {
  const cmp = spawnSync("qemu-img", ["compare", top, out], { encoding: "utf8" });
  expect(cmp.stderr + cmp.stdout, "qemu-img compare").toContain("Images are identical");
  expect(cmp.status, "qemu-img compare exit").toBe(0);

  const check = spawnSync("qemu-img", ["check", "--output=json", out], { encoding: "utf8" });
  const c = JSON.parse(check.stdout) as Record<string, unknown>;
  expect(check.status, `qemu-img check: ${check.stdout}${check.stderr}`).toBe(0);
  expect(c["check-errors"]).toBe(0);
  expect(c["leaks"] ?? 0).toBe(0);
  expect(c["corruptions"] ?? 0).toBe(0);
  expect(c["leaks-fixed"] ?? 0).toBe(0);

  const i = info(out);
  expect(i["backing-filename"]).toBeUndefined();
  expect(i["format-specific"]?.data?.["compression-type"]).toBe("zlib");
  expect(i["cluster-size"]).toBe(65536);
  expect(i["virtual-size"]).toBe(info(top)["virtual-size"]);

  const ref = join(dir, "reference.qcow2");
  run("qemu-img", ["convert", "-c", "-O", "qcow2", top, ref]);
  const ratio = statSync(out).size / statSync(ref).size;
  return ratio;
}
