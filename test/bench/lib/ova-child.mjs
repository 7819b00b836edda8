// Child process of the OVA benchmark: packs one OVA with vmkiln's writeOva and reports its own
// duration and peak RSS (VmHWM), so the figure is vmkiln's alone, not the bench's.
//   node ova-child.mjs <repo> <vmdk> <sha256> <virtual size> <out.ova> [identity|rehash]
// identity (default) packs as a build does: the digest was computed by the export step, which noted
// the file's identity, so writeOva checks the identity instead of hashing the disk a second time.
// rehash packs as `vmkiln pack-ova` does with a digest from the source's manifest: hashed again.
import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";

const [repo, vmdk, sha256, capacity, out, mode = "identity"] = process.argv.slice(2);
const { writeOva } = await import(pathToFileURL(join(repo, "dist/src/artifact/ova.js")).href);
const { buildOvf } = await import(pathToFileURL(join(repo, "dist/src/artifact/ovf.js")).href);
const { EventBus } = await import(pathToFileURL(join(repo, "dist/src/log/events.js")).href);
const { fileIdentity } = await import(pathToFileURL(join(repo, "dist/src/artifact/digest.js")).href);

const size = statSync(vmdk).size;
const name = "bench-disk1.vmdk";
const ovfXml = buildOvf({
  name: "bench",
  cpus: 2,
  memoryMiB: 1024,
  firmware: "bios",
  osType: "debian12",
  disks: [{ fileName: name, fileSize: size, capacityBytes: Number(capacity) }],
});
const r = await writeOva({
  out,
  ovfName: "bench.ovf",
  ovfXml,
  disks: [{ name, path: vmdk, sha256, size, identity: mode === "identity" ? await fileIdentity(vmdk) : undefined }],
  events: new EventBus(),
  signal: new AbortController().signal,
});
const status = readFileSync("/proc/self/status", "utf8");
const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
process.stdout.write(JSON.stringify({ durationMs: r.durationMs, size: r.size, sha256: r.sha256, out: basename(r.path), vmHwmKb: kb("VmHWM") }) + "\n");
