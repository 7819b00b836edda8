// Child process of the OVA export benchmark (../ova-export.mjs): the export step's OVA path alone,
// as exportOva runs it (measureStreamOptimizedVmdk with the spill file in a work dir, then writeOva
// streaming pass 2), and its own CPU time per pass. Its peak RSS is taken by /usr/bin/time -v.
//   node ova-export-child.mjs <dist root> <overlay.qcow2> <out dir>
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [root, src, out] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(join(root, p)).href);
const { measureStreamOptimizedVmdk } = await load("src/artifact/vmdk/export.js");
const { writeOva } = await load("src/artifact/ova.js");
const { EventBus } = await load("src/log/events.js");
rmSync(out, { recursive: true, force: true });
const work = join(out, "work");
mkdirSync(work, { recursive: true });
const signal = new AbortController().signal;
const events = new EventBus();
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const c0 = cpu();
const m = await measureStreamOptimizedVmdk({ src, fileName: "b-disk1.vmdk", signal, events, spillDir: work });
if (m.kind !== "measured") throw new Error(m.reason);
const c1 = cpu();
try {
  await writeOva({ out: join(out, "b.ova"), ovfName: "b.ovf", ovfXml: "<Envelope/>", disks: [{ name: "b-disk1.vmdk", stream: m.stream, sha256: m.sha256, size: m.size }], events, signal });
} finally {
  await m.close();
}
const c2 = cpu();
const left = readdirSync(work);
rmSync(out, { recursive: true, force: true });
console.log(JSON.stringify({ size: m.size, clusters: m.stats.clusters, pass1CpuMs: Math.round(c1 - c0), pass2CpuMs: Math.round(c2 - c1), workLeft: left }));
