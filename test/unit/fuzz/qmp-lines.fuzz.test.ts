// Fuzz target: the QMP line reader (drivers/qemu/qmp.ts LineReader). Arbitrary chunkings of valid
// lines, garbage, CRLF and overlong lines: the lines that come out are exactly the lines that went
// in (trimmed, empty ones skipped, overlong ones dropped), the buffer never holds more than the
// limit, and a huge input is read in linear time.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LineReader, QmpClient } from "../../../drivers/qemu/qmp.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const MAX = 64; // small, so the generators reach it often

/** Splits `text` at the given cut points (sorted, deduplicated, inside the text). */
function chunk(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(text.slice(prev, c));
    prev = c;
  }
  out.push(text.slice(prev));
  return out;
}

/** What the reader must produce: every complete line, trimmed, non-empty, not over the limit. */
function expected(text: string, max: number): { lines: string[]; overlong: number } {
  const all = text.split("\n");
  all.pop(); // the unfinished last line stays buffered
  let overlong = 0;
  const lines: string[] = [];
  for (const l of all) {
    if (l.length > max) overlong++;
    else if (l.trim()) lines.push(l.trim());
  }
  return { lines, overlong };
}

const qmpLine = fc.oneof(
  fc.json().map((j) => j.replace(/\n/g, "")),
  fc.constantFrom('{"QMP": {"version": {}}, "capabilities": []}', '{"return": {}, "id": "vmkiln-1"}', '{"event": "SHUTDOWN", "data": {"guest": true}}'),
  fc.string({ unit: "binary", maxLength: 100 }).map((s) => s.replace(/\n/g, "")), // garbage
);

describe("fuzz: QMP line reader", () => {
  const runs = 3000;
  it(
    "any chunking of any lines (CRLF or LF, garbage, overlong) yields exactly the complete lines; memory stays bounded",
    () => {
      let cases = 0;
      fc.assert(
        fc.property(
          fc.array(qmpLine, { maxLength: 30 }),
          fc.boolean(),
          fc.string({ maxLength: 20 }).map((s) => s.replace(/\n/g, "")),
          fc.array(fc.nat(), { maxLength: 40 }),
          (lines, crlf, tail, cuts) => {
            cases++;
            const text = lines.map((l) => l + (crlf ? "\r\n" : "\n")).join("") + tail;
            const r = new LineReader(MAX);
            const got: string[] = [];
            let overlong = 0;
            for (const c of chunk(text, cuts)) {
              const o = r.push(c);
              got.push(...o.lines);
              overlong += o.overlong;
              expect(r.buffered).toBeLessThanOrEqual(MAX);
            }
            const want = expected(text, MAX);
            expect(got).toEqual(want.lines);
            // An unfinished overlong tail is counted as soon as it is over the limit.
            expect(overlong).toBe(want.overlong + (tail.length > MAX ? 1 : 0));
          },
        ),
        fuzzParams(runs),
      );
      console.log(`fuzz qmp-lines: ${cases} cases`);
    },
    fuzzTimeoutMs(runs),
  );

  it("a 64 MiB line in 64 KiB chunks, then a valid line: linear time, bounded buffer", () => {
    const r = new LineReader(4 * 2 ** 20);
    const piece = "y".repeat(64 * 1024);
    const t0 = performance.now();
    let overlong = 0;
    for (let i = 0; i < 1024; i++) {
      overlong += r.push(piece).overlong;
      expect(r.buffered).toBeLessThanOrEqual(4 * 2 ** 20);
    }
    const end = r.push('\n{"return": {}, "id": "vmkiln-2"}\r\n');
    expect(overlong).toBe(1);
    expect(end.lines).toEqual(['{"return": {}, "id": "vmkiln-2"}']);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  const socketRuns = 40;
  it(
    "QmpClient over a socket: events, garbage and the reply in any chunking; every event in order, then the reply",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "vmkiln-qmp-fuzz-"));
      let cases = 0;
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.oneof(fc.stringMatching(/^[A-Z_]{1,12}$/).map((e) => ({ event: e })), fc.constantFrom("garbage {", "", "[1,2", "{}")), { maxLength: 12 }),
            fc.array(fc.nat(), { maxLength: 12 }),
            async (items, cuts) => {
              cases++;
              const path = join(dir, `q${cases}.sock`);
              const server = createServer((sock) => {
                sock.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
                let buf = "";
                sock.on("error", () => undefined);
                sock.on("data", (d) => {
                  buf += d.toString();
                  for (let i; (i = buf.indexOf("\n")) >= 0; ) {
                    const cmd = JSON.parse(buf.slice(0, i)) as { execute: string; id: string };
                    buf = buf.slice(i + 1);
                    if (cmd.execute === "qmp_capabilities") {
                      sock.write(`{"return": {}, "id": "${cmd.id}"}\r\n`);
                      continue;
                    }
                    const text = items.map((x) => (typeof x === "string" ? x : JSON.stringify(x)) + "\r\n").join("") + `{"return": ${items.length}, "id": "${cmd.id}"}\r\n`;
                    // Each piece a write of its own, a tick apart, so the client sees the cuts.
                    const pieces = chunk(text, cuts);
                    const next = () => {
                      const p = pieces.shift();
                      if (p === undefined) return;
                      sock.write(p);
                      setImmediate(next);
                    };
                    next();
                  }
                });
              });
              await new Promise<void>((ok) => server.listen(path, ok));
              const client = await QmpClient.connect(path, new AbortController().signal);
              try {
                const events: string[] = [];
                client.on("event", (e) => events.push(e.event));
                expect(await client.execute("query-status")).toBe(items.length);
                expect(events).toEqual(items.flatMap((x) => (typeof x === "string" ? [] : [x.event])));
              } finally {
                client.close();
                await new Promise<void>((ok) => server.close(() => ok()));
              }
            },
          ),
          fuzzParams(socketRuns),
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      console.log(`fuzz qmp-client: ${cases} cases`);
    },
    fuzzTimeoutMs(socketRuns, 100),
  );
});
