// End to end with real tools: qcow2 → streamOptimized VMDK → OVF → OVA, then GNU tar, sha256sum and
// qemu-img read it back, and verify accepts it; crafted bad OVAs each yield their finding code.
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOvf } from "../../../src/artifact/ovf.js";
import { writeOva } from "../../../src/artifact/ova.js";
import { convertToStreamOptimized, parseProgress } from "../../../src/artifact/vmdk.js";
import { verifyOva } from "../../../src/artifact/verify-ova.js";
import { digestFile, sha256Hex } from "../../../src/artifact/digest.js";
import { verifyCommand } from "../../../src/cli/verify.js";
import { UserError } from "../../../src/errors.js";
import { bus, makeTar, sh, tmp, type TarEntry } from "./helpers.js";

const t = tmp();
const signal = new AbortController().signal;
const VIRTUAL = 64 * 1024 * 1024;
let ova: string;
let vmdkPath: string;
let vmdk: Buffer;
let ovfXml: string;
let progressSeen = false;

beforeAll(async () => {
  const qcow = join(t.dir, "src.qcow2");
  sh("qemu-img", ["create", "-q", "-f", "qcow2", qcow, String(VIRTUAL)]);
  sh("qemu-io", ["-c", "write -P 0x5a 0 3M", "-c", "write -P 0x33 40M 1M", qcow]); // some real data
  const { events, seen } = bus();
  vmdkPath = join(t.dir, "tiny-disk1.vmdk");
  const conv = await convertToStreamOptimized(qcow, vmdkPath, { signal, events });
  progressSeen = seen.some((e) => e.type === "progress" && e.unit === "percent" && e.done === 100);
  vmdk = readFileSync(vmdkPath);
  expect(conv).toMatchObject({ path: vmdkPath, size: vmdk.length, sha256: sha256Hex(vmdk), virtualSize: VIRTUAL });
  ovfXml = buildOvf({
    name: "tiny",
    cpus: 1,
    memoryMiB: 512,
    firmware: "efi",
    osType: "debian12",
    disks: [{ fileName: "tiny-disk1.vmdk", fileSize: conv.size, capacityBytes: conv.virtualSize }],
  });
  ova = join(t.dir, "tiny.ova");
  const r = await writeOva({
    out: ova,
    ovfName: "tiny.ovf",
    ovfXml,
    // As a build packs: with the identity the convert step noted when it hashed the VMDK.
    disks: [{ name: "tiny-disk1.vmdk", path: vmdkPath, sha256: conv.sha256, size: conv.size, identity: conv.identity }],
    events,
    signal,
  });
  expect(conv.identity).toBeDefined();
  expect(r.sha256).toBe(sha256Hex(readFileSync(ova)));
  expect(r.members).toEqual(["tiny.ovf", "tiny.mf", "tiny-disk1.vmdk"]);
}, 60_000);
afterAll(() => t.cleanup());

describe("convert + writeOva", () => {
  it("reports qemu-img progress", () => {
    expect(parseProgress("    (12.34/100%)")).toBe(12.34);
    expect(progressSeen).toBe(true);
  });

  it("GNU tar lists OVF, .mf, vmdk with owner 0/0 and mode 0644", () => {
    const lines = sh("tar", ["--numeric-owner", "-tvf", ova]).trim().split("\n");
    expect(lines.map((l) => l.split(/\s+/).pop())).toEqual(["tiny.ovf", "tiny.mf", "tiny-disk1.vmdk"]);
    for (const l of lines) expect(l).toMatch(/^-rw-r--r-- 0\/0 /);
  });

  it("extracted files match the .mf, the .sha256 passes sha256sum -c, qemu-img reads the vmdk", () => {
    const x = join(t.dir, "x");
    mkdirSync(x);
    sh("tar", ["-xf", ova, "-C", x]);
    const mf = readFileSync(join(x, "tiny.mf"), "utf8");
    const sums = sh("sha256sum", ["tiny.ovf", "tiny-disk1.vmdk"], x);
    const expected = sums
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/))
      .map(([hex, name]) => `SHA256(${name})= ${hex}\n`)
      .join("");
    expect(mf).toBe(expected);
    expect(readFileSync(join(x, "tiny.ovf"), "utf8")).toBe(ovfXml);
    expect(readFileSync(`${ova}.sha256`, "utf8")).toMatch(/^[0-9a-f]{64}  tiny\.ova\n$/);
    expect(sh("sha256sum", ["-c", "tiny.ova.sha256"], t.dir)).toContain("tiny.ova: OK");
    const info = JSON.parse(sh("qemu-img", ["info", "--output=json", join(x, "tiny-disk1.vmdk")])) as Record<string, any>;
    expect(info["format"]).toBe("vmdk");
    expect(info["virtual-size"]).toBe(VIRTUAL);
    expect(info["format-specific"]["data"]["create-type"]).toBe("streamOptimized");
    expect(readFileSync(join(x, "tiny-disk1.vmdk")).subarray(0, 4).toString("latin1")).toBe("KDMV");
  });

  it("verify accepts the good OVA", async () => {
    const r = await verifyOva(ova, { signal });
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.members.map((m) => [m.name, m.type])).toEqual([
      ["tiny.ovf", "file"],
      ["tiny.mf", "file"],
      ["tiny-disk1.vmdk", "file"],
    ]);
    const out: string[] = [];
    const io = { out: (l: string) => out.push(l), err: () => {}, events: bus().events, signal };
    expect(await verifyCommand(ova, {}, io)).toBe(0);
    expect(out.at(-1)).toMatch(/OK/);
    expect(await verifyCommand(ova, { json: true }, io)).toBe(0);
    expect(JSON.parse(out.at(-1)!)).toMatchObject({ ok: true, findings: [] });
  });

  it("deletes the partial OVA when the disk no longer matches its digest", async () => {
    const out = join(t.dir, "bad.ova");
    await expect(
      writeOva({
        out,
        ovfName: "tiny.ovf",
        ovfXml,
        disks: [{ name: "tiny-disk1.vmdk", path: vmdkPath, sha256: "0".repeat(64), size: vmdk.length }],
        events: bus().events,
        signal,
      }),
    ).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(existsSync(out)).toBe(false);
    expect(tempFilesBeside(out)).toEqual([]);
  });

  it("refuses a disk whose identity changed after it was hashed (no second hash needed to notice)", async () => {
    const copy = join(t.dir, "changed-disk1.vmdk");
    copyFileSync(vmdkPath, copy);
    const d = await digestFile(copy, ["sha256"], { signal });
    // Same bytes, same size: only the write itself gives it away (mtime/ctime).
    await new Promise((r) => setTimeout(r, 20));
    const fd = openSync(copy, "r+");
    writeSync(fd, vmdk.subarray(0, 1), 0, 1, 0);
    closeSync(fd);
    const out = join(t.dir, "changed.ova");
    await expect(
      writeOva({ out, ovfName: "tiny.ovf", ovfXml, disks: [{ name: "tiny-disk1.vmdk", path: copy, sha256: d.digests["sha256"]!, size: d.size, identity: d.identity }], events: bus().events, signal }),
    ).rejects.toMatchObject({ code: "DISK_CHANGED" });
    expect(existsSync(out)).toBe(false);
    expect(tempFilesBeside(out)).toEqual([]);
  });

  it("aborts and cleans up", async () => {
    const ac = new AbortController();
    ac.abort();
    const out = join(t.dir, "aborted.ova");
    await expect(
      writeOva({ out, ovfName: "tiny.ovf", ovfXml, disks: [], events: bus().events, signal: ac.signal }),
    ).rejects.toMatchObject({ code: "ABORTED" });
    expect(tempFilesBeside(out)).toEqual([]);
  });
});

describe("verify rejects crafted OVAs", () => {
  const mf = (files: Array<[string, Buffer | string]>) => files.map(([n, d]) => `SHA256(${n})= ${sha256Hex(d)}\n`).join("");
  const good = (): TarEntry[] => [
    { name: "tiny.ovf", data: ovfXml },
    { name: "tiny.mf", data: mf([["tiny.ovf", ovfXml], ["tiny-disk1.vmdk", vmdk]]) },
    { name: "tiny-disk1.vmdk", data: vmdk },
  ];
  const cases: Array<[string, () => TarEntry[]]> = [
    ["OVF_NOT_FIRST", () => { const g = good(); return [g[2]!, g[0]!, g[1]!]; }],
    ["MF_DIGEST_MISMATCH", () => { const g = good(); g[1]!.data = mf([["tiny.ovf", ovfXml], ["tiny-disk1.vmdk", "other"]]); return g; }],
    ["OVF_FILE_SIZE", () => {
      const xml = ovfXml.replace(`ovf:size="${vmdk.length}"`, `ovf:size="${vmdk.length + 1}"`);
      return [{ name: "tiny.ovf", data: xml }, { name: "tiny.mf", data: mf([["tiny.ovf", xml], ["tiny-disk1.vmdk", vmdk]]) }, good()[2]!];
    }],
    ["MEMBER_DOTDOT", () => [...good(), { name: "../evil", data: "x" }]],
    ["MEMBER_ABSOLUTE", () => [...good(), { name: "/etc/evil", data: "x" }]],
    ["MEMBER_LINK", () => [...good(), { name: "link", type: "symlink", linkname: "/etc/passwd" }]],
    ["OVF_FILE_MISSING", () => good().slice(0, 2)],
    ["MEMBER_OWNER", () => { const g = good(); g[2]!.uid = 1000; return g; }],
    ["MF_SPELLING", () => { const g = good(); g[1]!.data = String(g[1]!.data).replace(/^SHA256\((.*?)\)= /gm, "SHA256 ($1) = "); return g; }],
    ["MF_ALGORITHM", () => { const g = good(); g[1]!.data = String(g[1]!.data).replace("SHA256(tiny.ovf)=", "SHA2-256(tiny.ovf)="); return g; }],
  ];
  it.each(cases)("%s", async (code, entries) => {
    const path = join(t.dir, `${code}.ova`);
    writeFileSync(path, await makeTar(entries()));
    const r = await verifyOva(path, { signal });
    expect(r.ok).toBe(false);
    expect(r.findings.map((f) => f.code)).toContain(code);
    expect(existsSync(join(t.dir, "evil"))).toBe(false);
  });

  it("checks the .sha256 beside the OVA", async () => {
    const path = join(t.dir, "sum.ova");
    writeFileSync(path, await makeTar(good()));
    writeFileSync(`${path}.sha256`, `${"0".repeat(64)}\tsum.ova\n`); // Packer's tab format
    expect((await verifyOva(path, { signal })).findings.map((f) => f.code)).toEqual(["SHA256_FILE_FORMAT"]);
    writeFileSync(`${path}.sha256`, `${"0".repeat(64)}  sum.ova\n`);
    expect((await verifyOva(path, { signal })).findings.map((f) => f.code)).toEqual(["SHA256_FILE_MISMATCH"]);
  });

  it("reports a truncated OVA as a finding and unreadable input as a UserError", async () => {
    const path = join(t.dir, "trunc.ova");
    writeFileSync(path, (await makeTar(good())).subarray(0, 5000));
    expect((await verifyOva(path, { signal })).findings.map((f) => f.code)).toContain("TAR_CORRUPT");
    writeFileSync(join(t.dir, "junk.ova"), "not a tar at all");
    await expect(verifyOva(join(t.dir, "junk.ova"), { signal })).rejects.toBeInstanceOf(UserError);
    await expect(verifyOva(join(t.dir, "nope.ova"), { signal })).rejects.toMatchObject({ code: "VERIFY_UNREADABLE", exitCode: 2 });
  });
});

/** writeOva's temp files (`.<name>.<random>.partial`) left beside `out`. */
function tempFilesBeside(out: string): string[] {
  return readdirSync(dirname(out)).filter((f) => f.startsWith(`.${basename(out)}.`) && f.endsWith(".partial"));
}
