// Fuzz target (issue 19): corrupted qcow2 input to the flattener and to the VMDK writer it feeds.
// A real two-layer chain (a zlib-compressed base, as cloud images ship, and an overlay with the
// build's writes, zeros and discards) is damaged where qcow2 keeps its structure - header fields,
// L1 and L2 entries, the first bytes of compressed clusters - or cut short. Every case must end
// within seconds (no hang) as one of: a finished export, "unsupported" (the caller falls back to
// qemu-img), or a VmkilnError; never a TypeError/RangeError, never a .partial file left behind,
// and the process's memory stays bounded. What vmkiln does export must read, through qemu-img, the
// same as the damaged chain whenever qemu-img can read that chain at all. The OVA path's two passes
// (measure, then stream with the changed clusters taken back from the spill file) must end the same
// way as the one-pass writer, with the same bytes, and leave no spill file.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flattenToCompressedQcow2 } from "../../../src/artifact/qcow2/flatten.js";
import { measureStreamOptimizedVmdk, writeStreamOptimizedVmdk } from "../../../src/artifact/vmdk/export.js";
import { VmkilnError } from "../../../src/errors.js";
import { EventBus } from "../../../src/log/events.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { tmp } from "../artifact/helpers.js";
import { MiB, convertCompressed, makeRawBase, qemuIo, run } from "../artifact/qcow2/chains.js";

const RUNS = 6;
const CASE_LIMIT_MS = 15_000;
/** Generous against the ~100 MB the runner itself uses: a table sized by a damaged field would pass it. */
const RSS_LIMIT = 1024 * MiB;

const t = tmp("vmkiln-fuzz-qcow2-");
afterAll(() => t.cleanup());

interface Layer {
  bytes: Buffer;
  /** [start, length] of the places that hold structure. */
  regions: Array<[number, number]>;
}

/** Header, L1 table, L2 tables and the first 16 bytes of every compressed cluster of a qcow2 file. */
function structureOf(b: Buffer): Array<[number, number]> {
  const regions: Array<[number, number]> = [[0, 112]];
  const clusterBits = b.readUInt32BE(20);
  const l1Size = b.readUInt32BE(36);
  const l1Offset = Number(b.readBigUInt64BE(40));
  regions.push([l1Offset, l1Size * 8]);
  regions.push([Number(b.readBigUInt64BE(48)), 64]); // refcount table
  const offMask = (1n << 56n) - 1n - 511n;
  const csBits = 62n - BigInt(clusterBits - 8);
  for (let i = 0; i < l1Size; i++) {
    const l2 = Number(b.readBigUInt64BE(l1Offset + i * 8) & offMask);
    if (l2 === 0 || l2 >= b.length) continue;
    regions.push([l2, 1 << clusterBits]);
    for (let j = 0; j < 1 << (clusterBits - 3); j += 1) {
      const e = b.readBigUInt64BE(l2 + j * 8);
      if ((e >> 62n) & 1n) regions.push([Number(e & ((1n << csBits) - 1n)), 16]);
    }
  }
  return regions.filter(([s, n]) => n > 0 && s < b.length);
}

type Edit =
  | { op: "byte"; layer: number; region: number; at: number; value: number }
  | { op: "u64"; layer: number; region: number; at: number; value: bigint }
  | { op: "truncate"; layer: number; at: number };

const INTERESTING = [0n, 1n, 0x200n, 0x10000n, 0xffffffffn, 1n << 40n, (1n << 63n) | 0x10000n, (1n << 62n) | 0x30000n, 0xffffffffffffffffn];
const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("byte" as const), layer: fc.nat(1), region: fc.nat(), at: fc.nat(), value: fc.nat(255) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("u64" as const), layer: fc.nat(1), region: fc.nat(), at: fc.nat(), value: fc.constantFrom(...INTERESTING) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), layer: fc.nat(1), at: fc.nat() }) },
);

function damaged(layers: Layer[], edits: Edit[]): Buffer[] {
  const out = layers.map((l) => Buffer.from(l.bytes));
  for (const e of edits) {
    const b = out[e.layer]!;
    if (e.op === "truncate") {
      out[e.layer] = b.subarray(0, e.at % (b.length + 1));
      continue;
    }
    const regions = layers[e.layer]!.regions;
    const [start, len] = regions[e.region % regions.length]!;
    if (e.op === "byte") {
      const at = start + (e.at % len);
      if (at < b.length) b[at] = e.value;
    } else {
      const at = start + (Math.floor((e.at % len) / 8) * 8);
      if (at + 8 <= b.length) b.writeBigUInt64BE(e.value, at);
    }
  }
  return out;
}

async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${CASE_LIMIT_MS} ms (hang)`)), CASE_LIMIT_MS)));
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** The OVA path: pass 1 measures (keeping changed clusters in a spill file in `spillDir`), pass 2 streams. */
async function twoPass(src: string, spillDir: string, signal: AbortSignal, events: EventBus): Promise<{ kind: "unsupported" } | { kind: "streamed"; size: number; sha256: string; measured: string }> {
  const m = await measureStreamOptimizedVmdk({ src, fileName: "out.vmdk", signal, events, spillDir });
  if (m.kind !== "measured") return { kind: "unsupported" };
  try {
    const h = createHash("sha256");
    let size = 0;
    for await (const c of m.stream(signal)) {
      h.update(c);
      size += c.length;
    }
    return { kind: "streamed", size, sha256: h.digest("hex"), measured: m.sha256 };
  } finally {
    await m.close();
  }
}

/** A clean outcome: a result, or a VmkilnError (anything else is a bug). */
async function outcome<T>(p: Promise<T>, what: string): Promise<{ ok: T } | { error: VmkilnError }> {
  try {
    return { ok: await within(p, what) };
  } catch (err) {
    if (err instanceof VmkilnError) return { error: err };
    throw err;
  }
}

describe("fuzz: damaged qcow2 chains into the flattener and the VMDK writer", () => {
  let layers: Layer[];
  let n = 0;
  const tally = { written: 0, unsupported: 0, errors: 0, qemuRefused: 0, twoPass: 0 };

  beforeAll(() => {
    const raw = makeRawBase(t.dir, "base.raw", 16 * MiB);
    const base = convertCompressed(raw, join(t.dir, "base.qcow2"));
    const top = join(t.dir, "top.qcow2");
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top]);
    qemuIo(top, ["write -P 0x33 1M 192k", "write -z 4M 128k", "discard 8M 64k", "write -P 0x44 15M 64k"]);
    layers = [base, top].map((p) => {
      const bytes = readFileSync(p);
      return { bytes, regions: structureOf(bytes) };
    });
  }, 60_000);

  afterAll(() => console.log(`qcow2 fuzz outcomes: ${JSON.stringify(tally)}`));

  it(
    "every case ends, cleanly, in bounded memory; what is exported reads like the chain",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
          const dir = join(t.dir, `case-${++n}`);
          mkdirSync(dir);
          try {
            const [base, top] = damaged(layers, edits);
            writeFileSync(join(dir, "base.qcow2"), base!);
            writeFileSync(join(dir, "top.qcow2"), top!);
            const src = join(dir, "top.qcow2");
            const signal = new AbortController().signal;
            const events = new EventBus();
            const vmdk = join(dir, "out.vmdk");
            const v = await outcome(writeStreamOptimizedVmdk(vmdk, { src, fileName: "out.vmdk", signal, events }), "VMDK writer");
            const q = await outcome(flattenToCompressedQcow2({ src, dst: join(dir, "out.qcow2"), signal }), "flattener");
            const spillDir = join(dir, "spill");
            mkdirSync(spillDir);
            const two = await outcome(twoPass(src, spillDir, signal, events), "VMDK writer, two passes");
            expect(process.memoryUsage().rss).toBeLessThan(RSS_LIMIT);
            expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
            expect(readdirSync(spillDir), "spill file left behind").toEqual([]);
            // Same chain, same writer: the two-pass path ends as the one-pass path does, byte for byte.
            if ("error" in v) expect("error" in two, `one pass failed (${v.error.message}), two passes did not`).toBe(true);
            else if (v.ok.kind === "unsupported") expect("ok" in two && two.ok.kind).toBe("unsupported");
            else {
              expect("ok" in two ? two.ok : two.error.message).toEqual({ kind: "streamed", size: v.ok.size, sha256: v.ok.sha256, measured: v.ok.sha256 });
              tally.twoPass++;
            }
            for (const [r, out, fmt] of [
              [v, vmdk, "vmdk"],
              [q, join(dir, "out.qcow2"), "qcow2"],
            ] as const) {
              if ("error" in r) {
                tally.errors++;
                continue;
              }
              if (r.ok.kind === "unsupported") {
                tally.unsupported++;
                continue;
              }
              tally.written++;
              const cmp = spawnSync("qemu-img", ["compare", "-f", "qcow2", "-F", fmt, src, out], { encoding: "utf8", timeout: CASE_LIMIT_MS });
              // 0: identical; 1: they differ (a bug); 2 or more: qemu-img could not read one of them.
              if (cmp.status !== 0 && cmp.status !== 1) {
                tally.qemuRefused++;
                // Our output itself must always be readable.
                const check = spawnSync("qemu-img", ["check", "-f", fmt, out], { encoding: "utf8" });
                expect(check.status, `qemu-img check of our ${fmt}: ${check.stdout}${check.stderr}`).toBe(0);
                continue;
              }
              expect(cmp.status, `${fmt} differs from the damaged chain it was made from: ${cmp.stdout}${cmp.stderr}`).toBe(0);
            }
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 2000),
  );
});
