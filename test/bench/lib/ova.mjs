// OVA-pack benchmark (issue 7 item 2): one >= 2 GiB streamOptimized VMDK packed three ways —
//   vmkiln:    writeOva (dist/src/artifact/ova.js) in a child process (ova-child.mjs), which reads the
//              disk once and hashes it twice (the OVA's digest and the .mf check) while writing;
//   sha256sum: one `sha256sum` pass over the same bytes (the floor for "read it and hash it");
//   naive:     `sha256sum` the files into a .mf, `tar cf` the OVA, `sha256sum` the OVA.
// Everything runs from a warm page cache (the disk is read once first), so the figures compare CPU
// and copying, not this machine's disk.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const MiB = 1024 * 1024;

export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)i?B?$/i.exec(String(text).trim());
  if (!m) throw new Error(`bad size "${text}" (use e.g. 2304M, 2.25G)`);
  const mult = { "": 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * mult);
}

function sha256File(path) {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: MiB })
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/**
 * A streamOptimized VMDK of about `bytes` bytes, made once and cached: random data (which deflate
 * cannot shrink, so the VMDK stays as large as asked) with every eighth MiB zero, like a real disk's
 * holes (those become sparse grains).
 */
export async function ensureOvaDisk(bytes, log) {
  const dir = join(process.env.VMKILN_CACHE_DIR ?? join(homedir(), ".cache", "vmkiln"), "bench");
  mkdirSync(dir, { recursive: true });
  const vmdk = join(dir, `ova-disk-${Math.round(bytes / MiB)}M.vmdk`);
  const sumFile = `${vmdk}.sha256`;
  if (existsSync(vmdk) && existsSync(sumFile)) {
    return { vmdk, sha256: readFileSync(sumFile, "utf8").trim(), size: statSync(vmdk).size, virtualSize: virtualSize(vmdk) };
  }
  const rawMiB = Math.ceil((bytes / MiB) * (8 / 7));
  log(`making a ${Math.round(bytes / MiB)} MiB test VMDK in ${dir} (once; ${rawMiB} MiB of raw data first)`);
  const raw = `${vmdk}.raw.tmp`;
  const fd = openSync(raw, "w");
  const buf = Buffer.alloc(MiB);
  const zero = Buffer.alloc(MiB);
  try {
    for (let i = 0; i < rawMiB; i++) writeSync(fd, i % 8 === 7 ? zero : randomFillSync(buf));
  } finally {
    closeSync(fd);
  }
  const tmp = `${vmdk}.tmp`;
  try {
    execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", raw, tmp], { stdio: "inherit" });
  } finally {
    rmSync(raw, { force: true });
  }
  const sha256 = await sha256File(tmp);
  renameSync(tmp, vmdk);
  writeFileSync(sumFile, sha256 + "\n");
  return { vmdk, sha256, size: statSync(vmdk).size, virtualSize: virtualSize(vmdk) };
}

function virtualSize(vmdk) {
  return JSON.parse(execFileSync("qemu-img", ["info", "--output=json", vmdk], { encoding: "utf8" }))["virtual-size"];
}

function timed(file, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - start;
      if (code !== 0) reject(new Error(`${file} ${args.join(" ")} exited ${code}: ${err.slice(-500)}`));
      else resolve({ ms, out });
    });
  });
}

const NAIVE = String.raw`set -e
ln -sfn "$1" bench-disk1.vmdk
sha256sum --tag bench.ovf bench-disk1.vmdk | sed 's/^SHA256 (\(.*\)) = /SHA256(\1)= /' > bench.mf
tar -hcf naive.ova bench.ovf bench.mf bench-disk1.vmdk
sha256sum naive.ova > naive.ova.sha256`;

export async function runOvaBench({ repo, workDir, bytes, runs, log }) {
  const disk = await ensureOvaDisk(bytes, log);
  const dir = join(workDir, "ova");
  mkdirSync(dir, { recursive: true });
  const { buildOvf } = await import(pathToFileURL(join(repo, "dist/src/artifact/ovf.js")).href);
  writeFileSync(
    join(dir, "bench.ovf"),
    buildOvf({ name: "bench", cpus: 2, memoryMiB: 1024, firmware: "bios", osType: "debian12", disks: [{ fileName: "bench-disk1.vmdk", fileSize: disk.size, capacityBytes: disk.virtualSize }] }),
  );
  log(`OVA pack: ${(disk.size / MiB).toFixed(0)} MiB VMDK ${disk.vmdk}; warming the page cache`);
  await timed("sh", ["-c", 'cat "$1" > /dev/null', "sh", disk.vmdk]);

  const child = join(repo, "test/bench/lib/ova-child.mjs");
  /** One writeOva in a child process (its own RSS); mode: see ova-child.mjs. */
  const packWithVmkiln = async (mode) => {
    const out = join(dir, "vmkiln.ova");
    const r = await timed(process.execPath, [child, repo, disk.vmdk, disk.sha256, String(disk.virtualSize), out, mode]);
    const j = JSON.parse(r.out.trim().split("\n").pop());
    rmSync(out, { force: true });
    rmSync(`${out}.sha256`, { force: true });
    return { ms: r.ms, packMs: j.durationMs, rssKb: j.vmHwmKb, ovaBytes: j.size };
  };
  const kinds = {
    sha256sum: async () => ({ ms: (await timed("sha256sum", [disk.vmdk])).ms }),
    vmkiln: () => packWithVmkiln("identity"),
    vmkilnRehash: () => packWithVmkiln("rehash"),
    naive: async () => {
      const r = await timed("bash", ["-c", NAIVE, "naive", disk.vmdk], { cwd: dir });
      const ovaBytes = statSync(join(dir, "naive.ova")).size;
      rmSync(join(dir, "naive.ova"), { force: true });
      return { ms: r.ms, ovaBytes };
    },
  };
  const results = { sha256sum: [], vmkiln: [], vmkilnRehash: [], naive: [] };
  const order = Object.keys(kinds);
  for (let i = 0; i < runs; i++) {
    // Rotate the order so no method always runs first (or right after another's writes).
    const rot = order.slice(i % order.length).concat(order.slice(0, i % order.length));
    for (const k of rot) {
      const r = await kinds[k]();
      results[k].push(r);
      log(`  ova run ${i + 1}/${runs} ${k.padEnd(12)} ${(r.ms / 1000).toFixed(2)} s${r.rssKb ? `  peak RSS ${(r.rssKb / 1024).toFixed(0)} MiB (writeOva itself ${(r.packMs / 1000).toFixed(2)} s)` : ""}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return { disk: { path: disk.vmdk, size: disk.size }, results };
}
