// read.ts resolves a chain the way QEMU does: checked cluster by cluster against `qemu-img map`
// (which layer answers, zero or data, and the host offset of normal clusters).
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { splitByCluster } from "../../../../src/artifact/qcow2/flatten.js";
import { isUnsupported, openChain, type Chain } from "../../../../src/artifact/qcow2/read.js";
import { tmp } from "../helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo, run } from "./chains.js";

const t = tmp("vmkiln-qcow2-read-");
afterAll(() => (process.env["QCOW2_TEST_KEEP"] ? console.log(`kept ${t.dir}`) : t.cleanup()));
const CS = 65536;

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

/**
 * Per 64 KiB cluster: "zero", "normal@<depth>:<host offset>" or "compressed@<depth>" (map shows no
 * offset for those). Classified by the map entry covering the cluster's first byte: map splits a
 * partly written normal cluster at 4 KiB when the host file has a hole in it.
 */
function fromMap(top: string, virtualSize: number): string[] {
  const entries = JSON.parse(run("qemu-img", ["map", "--output=json", top])) as MapEntry[];
  const out: string[] = [];
  let i = 0;
  for (let g = 0; g < virtualSize; g += CS) {
    while (entries[i]!.start + entries[i]!.length <= g) i++;
    const e = entries[i]!;
    if (!e.present || (e.zero && !e.data)) out.push("zero");
    else if (e.offset !== undefined) out.push(`normal@${e.depth}:${e.offset + (g - e.start)}`);
    else out.push(`compressed@${e.depth}`);
  }
  return out;
}

/** Resolves 1 MiB at a time, as the flattener resolves batches, and cuts the pieces per cluster. */
async function fromResolve(chain: Chain): Promise<string[]> {
  const out: string[] = [];
  const step = 16 * CS;
  for (let start = 0; start < chain.virtualSize; start += step) {
    const count = Math.ceil(Math.min(step, chain.virtualSize - start) / CS);
    for (const pieces of splitByCluster(await chain.resolve(start, Math.min(step, chain.virtualSize - start)), start, count)) {
      expect(pieces).toHaveLength(1); // every layer has 64 KiB clusters here
      const p = pieces[0]!;
      out.push(p.kind === "zero" ? "zero" : p.kind === "data" ? `normal@${p.layer}:${p.hostOffset}` : `compressed@${p.layer}`);
    }
  }
  return out;
}

it("maps a 3-deep chain like qemu-img map", async () => {
  const base = convertCompressed(makeRawBase(t.dir, "base.raw", 16 * MiB), join(t.dir, "base.qcow2"));
  const mid = overlay(base, "qcow2", join(t.dir, "mid.qcow2"), 20 * MiB);
  qemuIo(mid, ["write -P 0x81 8M 1M", "write -z 4M 128k", "discard 8448k 64k", `write -P 0x82 ${17 * MiB} 64k`, "write -c -P 0x83 10M 64k"]);
  const top = overlay(mid, "qcow2", join(t.dir, "top.qcow2"), 24 * MiB);
  qemuIo(top, [
    "write -P 0x91 8704k 64k",
    "write -z 8M 64k",
    "write -P 0x92 4160k 4k",
    `write -P 0x93 ${22 * MiB} 100`,
    // Right after clusters that fall through to base data (random, then compressed text): the walk
    // must not mix up the top cluster's offset with the base's.
    "write -P 0x94 1M 64k",
    "write -c -P 0x95 2M 64k",
    "write -P 0x96 8320k 64k",
  ]);

  const chain = await openChain(top);
  if (isUnsupported(chain)) throw new Error(chain.reason);
  try {
    expect(chain.layers.map((l) => l.kind)).toEqual(["qcow2", "qcow2", "qcow2"]);
    const ours = await fromResolve(chain);
    const theirs = fromMap(top, chain.virtualSize);
    expect(ours).toEqual(theirs);
    expect(new Set(ours.map((s) => s.replace(/[@:].*/, "")))).toEqual(new Set(["zero", "normal", "compressed"]));

    // The compressed index of the base: sorted, and each length bound ends where the next begins.
    const b = chain.layers[2]!;
    if (b.kind !== "qcow2") throw new Error("base is qcow2");
    const idx = await b.compressedIndex();
    expect(idx.count).toBeGreaterThan(20);
    expect([...idx.starts].every((s, i, a) => i === 0 || s > a[i - 1]!)).toBe(true);
  } finally {
    await chain.close();
  }
});
