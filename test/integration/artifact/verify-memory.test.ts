// verify on hostile OVAs, measured from outside (issue 12): peak RSS (VmHWM) and time of a child
// process running the built CLI. Before the caps and the bounded parser (xml-tree.ts), a 4 MB
// descriptor of one-tag elements took 664 MiB and 20 s, a 31 MB one 4.4 GiB and 472 s (or an
// out-of-memory crash on a smaller heap), and 100,000 members 284 s. Each child gets 120 s.
import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { writeOva } from "../../../src/artifact/ova.js";
import { END_OF_ARCHIVE, encodeGnuHeader, paddingFor } from "../../../src/artifact/tar-header.js";
import { EventBus } from "../../../src/log/events.js";
import { tmp } from "../../unit/artifact/helpers.js";

const DIST = fileURLToPath(new URL("../../../dist", import.meta.url));
const CHILD = fileURLToPath(new URL("./verify-child.mjs", import.meta.url));
const t = tmp("vmkiln-verify-mem-");
afterAll(() => t.cleanup());

interface ChildResult {
  code: number;
  ms: number;
  vmHwmKiB: number;
  /** Finding codes printed, once each. */
  codes: string[];
  stderr: string;
}

function verifyInChild(ova: string): ChildResult {
  expect(existsSync(join(DIST, "src/cli/main.js")), "build dist/ first: npm run build").toBe(true);
  // SIGKILL: the CLI turns SIGTERM into a graceful abort, which a runaway parse never looks at.
  const out = execFileSync(process.execPath, [CHILD, DIST, ova], { encoding: "utf8", timeout: 120_000, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(out) as ChildResult;
}

/** An OVA whose descriptor is `bytes` long, made of `<a/>` elements (the shape that cost most). */
async function bigDescriptor(bytes: number): Promise<string> {
  const head = `<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/><VirtualSystem>`;
  const tail = `</VirtualSystem></Envelope>\n`;
  const xml = head + "<a/>".repeat(Math.ceil((bytes - head.length - tail.length) / 4)) + tail;
  const out = join(t.dir, `desc-${bytes}.ova`);
  await writeOva({ out, ovfName: "x.ovf", ovfXml: xml, disks: [], events: new EventBus(), signal: new AbortController().signal });
  return out;
}

const MiB = (kib: number) => kib / 1024;
// The child's own baseline (the CLI and its modules loaded, verifying a tiny OVA) is about 95 MiB.
const RSS_LIMIT_MIB = 250;

it("a 4 MB descriptor: a finding, peak RSS under 250 MiB", async () => {
  const r = verifyInChild(await bigDescriptor(4_000_000));
  console.log(`verify, 4 MB descriptor: exit ${r.code}, ${(r.ms / 1000).toFixed(1)} s, peak RSS ${MiB(r.vmHwmKiB).toFixed(0)} MiB`);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(1);
  expect(r.codes).toContain("OVF_TOO_COMPLEX");
  expect(MiB(r.vmHwmKiB)).toBeLessThan(RSS_LIMIT_MIB);
}, 180_000);

it("a 31 MB descriptor: a finding, peak RSS under 250 MiB", async () => {
  const r = verifyInChild(await bigDescriptor(31_000_000));
  console.log(`verify, 31 MB descriptor: exit ${r.code}, ${(r.ms / 1000).toFixed(1)} s, peak RSS ${MiB(r.vmHwmKiB).toFixed(0)} MiB`);
  expect(r.code).toBe(1);
  expect(r.codes).toContain("OVF_TOO_LARGE");
  expect(MiB(r.vmHwmKiB)).toBeLessThan(RSS_LIMIT_MIB);
}, 180_000);

it("100,000 members: a finding within 20 s, peak RSS under 250 MiB", async () => {
  const ova = join(t.dir, "members.ova");
  const ws = createWriteStream(ova);
  const w = (b: Buffer) => new Promise<void>((r) => (ws.write(b) ? r() : ws.once("drain", () => r())));
  const ovf = Buffer.from(`<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/></Envelope>\n`);
  await w(encodeGnuHeader({ name: "x.ovf", size: ovf.length, mtime: 0 }));
  await w(ovf);
  await w(paddingFor(ovf.length));
  for (let i = 0; i < 100_000; i++) await w(encodeGnuHeader({ name: `m${i}`, size: 0, mtime: 0 }));
  await w(END_OF_ARCHIVE);
  await new Promise<void>((r) => ws.end(() => r()));
  const r = verifyInChild(ova);
  console.log(`verify, 100,000 members: exit ${r.code}, ${(r.ms / 1000).toFixed(1)} s, peak RSS ${MiB(r.vmHwmKiB).toFixed(0)} MiB`);
  expect(r.code).toBe(1);
  expect(r.codes).toContain("TAR_TOO_MANY_MEMBERS");
  expect(r.ms).toBeLessThan(20_000);
  expect(MiB(r.vmHwmKiB)).toBeLessThan(RSS_LIMIT_MIB);
}, 180_000);
