// Fuzz target (issue 19): the OVA path's two VMDK passes against the one-pass writer on valid
// chains. A compressed base (as cloud images ship) gets an overlay of a random size (not always a
// multiple of 64 KiB) and a random list of the build's writes - patterns, incompressible bytes
// (deflate output above 64 KiB), zeros, discards - so the spill file gets rebuilt clusters of every
// kind, in runs that cross its 1 MiB read window. For every chain: pass 2 is byte for byte the
// one-pass file, deflates nothing, and the spill file is gone afterwards; an abort at a random
// point of pass 2 ends as AbortError and leaves no spill file either.
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ClusterSpill } from "../../../src/artifact/qcow2/cluster-spill.js";
import { Deflaters } from "../../../src/artifact/qcow2/zlib.js";
import { measureStreamOptimizedVmdk, writeStreamOptimizedVmdk } from "../../../src/artifact/vmdk/export.js";
import { AbortError } from "../../../src/errors.js";
import { EventBus } from "../../../src/log/events.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { tmp } from "../artifact/helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo, randomFile } from "../artifact/qcow2/chains.js";

const RUNS = 3;
const BASE = 16 * MiB;
const SECTOR = 512;

const originalTake = ClusterSpill.prototype.take;
const t = tmp("vmkiln-fuzz-vmdk2-");
afterAll(() => t.cleanup());

type Op = { op: "pattern" | "random" | "zero" | "discard"; at: number; sectors: number; value: number };
const op: fc.Arbitrary<Op> = fc.record({
  op: fc.constantFrom("pattern" as const, "random" as const, "zero" as const, "discard" as const),
  at: fc.nat(),
  sectors: fc.integer({ min: 1, max: (3 * MiB) / SECTOR }),
  value: fc.nat(255),
});

function command(o: Op, size: number, rnd: string): string {
  const at = (o.at % (size / SECTOR)) * SECTOR;
  const len = Math.min(o.sectors * SECTOR, size - at, o.op === "random" ? 2 * MiB : Infinity);
  if (o.op === "pattern") return `write -P ${o.value} ${at} ${len}`;
  if (o.op === "random") return `write -s ${rnd} ${at} ${len}`;
  if (o.op === "zero") return `write -z ${at} ${len}`;
  return `discard ${at} ${len}`;
}

describe("fuzz: the VMDK writer's two passes (spill file) against its one pass", () => {
  let base: string;
  let rnd: string;
  let n = 0;
  const tally = { spilled: 0, spillBytes: 0, aborted: 0 };

  beforeAll(() => {
    base = convertCompressed(makeRawBase(t.dir, "base.raw", BASE), join(t.dir, "base.qcow2"));
    rnd = randomFile(t.dir, "ops.rnd", 2 * MiB);
  }, 60_000);

  afterAll(() => console.log(`vmdk two-pass fuzz: ${JSON.stringify(tally)}`));

  it(
    "pass 2 is the one-pass file, deflates nothing, and leaves no spill file",
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: (4 * MiB) / SECTOR }), fc.array(op, { minLength: 1, maxLength: 6 }), fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(40) }), async (extra, ops, abortAt) => {
          const dir = join(t.dir, `case-${++n}`);
          const spillDir = join(dir, "spill");
          mkdirSync(spillDir, { recursive: true });
          const deflate = vi.spyOn(Deflaters.prototype, "deflate");
          const take = vi.spyOn(ClusterSpill.prototype, "take");
          try {
            const size = BASE + extra * SECTOR;
            const top = overlay(base, "qcow2", join(dir, "top.qcow2"), size);
            qemuIo(top, ops.map((o) => command(o, size, rnd)));
            const signal = new AbortController().signal;
            const events = new EventBus();
            const one = await writeStreamOptimizedVmdk(join(dir, "one.vmdk"), { src: top, fileName: "out.vmdk", signal, events });
            if (one.kind !== "written") throw new Error(one.reason);
            const bytes = readFileSync(one.path);

            deflate.mockClear();
            const m = await measureStreamOptimizedVmdk({ src: top, fileName: "out.vmdk", signal, events, spillDir });
            if (m.kind !== "measured") throw new Error(m.reason);
            const ac = new AbortController();
            try {
              expect(m.sha256).toBe(one.sha256);
              expect(m.size).toBe(one.size);
              expect(deflate).toHaveBeenCalledTimes(one.stats.clusters.compressed);
              tally.spilled += m.spilled.clusters;
              tally.spillBytes += m.spilled.bytes;
              deflate.mockClear();
              take.mockImplementation(function (this: ClusterSpill, g: number) {
                if (abortAt !== null && take.mock.calls.length > abortAt) ac.abort(new Error("Ctrl-C"));
                return originalTake.call(this, g);
              });
              const chunks: Buffer[] = [];
              try {
                for await (const c of m.stream(ac.signal)) chunks.push(Buffer.from(c)); // a chunk is reused once the next is asked for
              } catch (err) {
                expect(err).toBeInstanceOf(AbortError);
                expect(ac.signal.aborted).toBe(true);
                tally.aborted++;
              }
              expect(deflate, "pass 2 deflates").not.toHaveBeenCalled();
              if (!ac.signal.aborted) expect(Buffer.concat(chunks).equals(bytes), "pass 2 differs from the one-pass file").toBe(true);
            } finally {
              await m.close();
            }
            expect(readdirSync(spillDir), "spill file left behind").toEqual([]);
          } finally {
            deflate.mockRestore();
            take.mockRestore();
            rmSync(dir, { recursive: true, force: true });
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 4000),
  );
});
