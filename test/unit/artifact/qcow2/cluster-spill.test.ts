// ClusterSpill on its own: what is kept comes back exactly (kind, bytes, Adler-32), in any order
// and across its 1 MiB read window; what was never kept, or is asked for at the wrong time, is an
// error; the file is created exclusively, 0600, and removed by close() whatever happened.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { ClusterSpill } from "../../../../src/artifact/qcow2/cluster-spill.js";
import type { ClusterOutput } from "../../../../src/artifact/qcow2/flatten.js";
import { BuildError } from "../../../../src/errors.js";
import { tmp } from "../helpers.js";

const t = tmp("vmkiln-spill-");
afterAll(() => t.cleanup());

function output(g: number): ClusterOutput {
  switch (g % 5) {
    case 0:
      return { kind: "zero" };
    case 1:
      return { kind: "raw", data: randomBytes(65536) };
    case 2:
      // Incompressible data deflates to a little more than a cluster.
      return { kind: "compressed", data: randomBytes(65536 + 11), adler: (g * 2654435761) >>> 0 };
    case 3:
      return { kind: "copy", data: randomBytes(1 + ((g * 7919) % 40000)), adler: g };
    default:
      return { kind: "compressed", data: randomBytes(200 + (g % 300)) };
  }
}

describe("ClusterSpill", () => {
  it("gives back every kept output exactly, kept out of order, across many read windows", async () => {
    const spill = await ClusterSpill.create(t.dir, "a/b c.vmdk");
    expect(spill.path).toMatch(/\/\.a_b_c\.vmdk\.[0-9a-f]{16}\.spill$/);
    expect(statSync(spill.path).mode & 0o777).toBe(0o600);
    const guests = Array.from({ length: 120 }, (_, i) => i * 3 + 1);
    const order = [...guests].reverse(); // out of guest order: the index must sort
    const kept = new Map<number, ClusterOutput>();
    try {
      for (const g of order) {
        const o = output(g);
        kept.set(g, { ...o, ...(o.data ? { data: Buffer.from(o.data) } : {}) });
        await spill.keep(g, o);
        o.data?.fill(0xee); // the spill copied the bytes: the caller reuses its buffer
      }
      expect(spill.has(guests[0]!)).toBe(false); // still recording
      await spill.seal();
      expect(spill.count).toBe(guests.length);
      expect(statSync(spill.path).size).toBe(spill.bytes);
      expect(spill.bytes).toBeGreaterThan(3 * 1024 * 1024);
      expect(spill.has(2)).toBe(false);
      // Concurrent takes, as the flattener issues them (a batch at a time), in guest order and not.
      for (const list of [guests, order]) {
        const got = await Promise.all(list.map((g) => spill.take(g)));
        got.forEach((o, i) => {
          const want = kept.get(list[i]!)!;
          expect(o.kind).toBe(want.kind);
          expect(o.adler).toBe(want.adler);
          if (want.data) expect(o.data!.equals(want.data), `cluster ${list[i]}`).toBe(true);
          else expect(o.data).toBeUndefined();
          o.release?.();
        });
      }
      await expect(spill.take(2)).rejects.toThrow(/cluster 2 is not in the spill file/);
      await expect(spill.keep(5, { kind: "zero" })).rejects.toThrow(/after the spill was sealed/);
    } finally {
      await spill.close();
    }
    expect(existsSync(spill.path)).toBe(false);
    await spill.close();
    await expect(spill.take(guests[0]!)).rejects.toThrow(/read after close/);
  });

  it("a failed write (a full disk) gives up instead of failing: nothing is taken back, gaveUp names the file, close() still removes it", async () => {
    const spill = await ClusterSpill.create(t.dir, "full");
    const fh = (spill as unknown as { fh: { write: (...a: unknown[]) => Promise<unknown> } }).fh;
    const realWrite = fh.write.bind(fh);
    let writes = 0;
    // The first MiB reaches the disk, then the file system is full.
    fh.write = (...a: unknown[]) => (writes++ === 0 ? realWrite(...(a as Parameters<typeof realWrite>)) : Promise.reject(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" })));
    try {
      for (let g = 0; g < 60; g++) await spill.keep(g, { kind: "raw", data: randomBytes(65536) });
      await spill.keep(60, { kind: "zero" });
      await spill.seal();
      expect(spill.gaveUp).toContain(spill.path);
      expect(spill.gaveUp).toContain("ENOSPC");
      expect(writes).toBeGreaterThanOrEqual(2);
      // Pass 2 deflates everything again: no cluster is offered back, and the file holds nothing.
      for (let g = 0; g <= 60; g++) expect(spill.has(g)).toBe(false);
      expect(spill.count).toBe(0);
      expect(statSync(spill.path).size).toBe(0);
    } finally {
      await spill.close();
    }
    expect(readdirSync(t.dir).filter((f) => f.includes("full"))).toEqual([]);
  });

  it("a spill that wrote everything has not given up", async () => {
    const spill = await ClusterSpill.create(t.dir, "fine");
    try {
      await spill.keep(0, { kind: "raw", data: randomBytes(65536) });
      await spill.seal();
      expect(spill.gaveUp).toBeUndefined();
      expect(spill.has(0)).toBe(true);
    } finally {
      await spill.close();
    }
  });

  it("an output without bytes is refused rather than kept as something else", async () => {
    const spill = await ClusterSpill.create(t.dir, "bad");
    try {
      await expect(spill.keep(1, { kind: "compressed" })).rejects.toThrow(/without data/);
    } finally {
      await spill.close();
    }
  });
});
