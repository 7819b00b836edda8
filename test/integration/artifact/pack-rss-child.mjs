// Child process for pack-rss.test.ts: streams a big sparse raw file as an OVA disk member through the
// compiled writeOva and prints its peak RSS (VmHWM). Runs from dist/ (npm test builds it first).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [distRoot, disk, size, out] = process.argv.slice(2);
const { writeOva } = await import(join(distRoot, "src/artifact/ova.js"));
const { EventBus } = await import(join(distRoot, "src/log/events.js"));

// The disk's digest, computed in memory (the file is all zeros) so the file is read only by writeOva.
const zeros = Buffer.alloc(1024 * 1024);
const h = createHash("sha256");
for (let left = Number(size); left > 0; left -= zeros.length) h.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
const sha256 = h.digest("hex");

const started = Date.now();
const r = await writeOva({
  out,
  ovfName: "big.ovf",
  ovfXml: "<Envelope/>\n",
  disks: [{ name: "big.raw", path: disk, sha256, size: Number(size) }],
  events: new EventBus(),
  signal: new AbortController().signal,
});
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1];
process.stdout.write(JSON.stringify({ vmHwmKiB: Number(hwm), packMs: Date.now() - started, size: r.size }) + "\n");
