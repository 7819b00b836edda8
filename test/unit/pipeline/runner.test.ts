import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AbortError, BuildError, UserError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import type { BuildContext, Undo } from "../../../src/pipeline/context.js";
import { Journal, deadJournals, pendingEntries } from "../../../src/pipeline/journal.js";
import { runSteps } from "../../../src/pipeline/runner.js";
import type { Step } from "../../../src/pipeline/step.js";

function makeCtx(onError: "cleanup" | "abort" = "cleanup") {
  const events = new EventBus();
  const seen: BuildEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const undos: Undo[] = [];
  const ctx = {
    events,
    options: { force: false, onError, debug: false },
    buildDir: "/tmp/x",
    timings: [],
    defer(what: string, fn: () => void, opts?: { onlyOnFailure?: boolean }) {
      undos.push({ what, fn, onlyOnFailure: opts?.onlyOnFailure ?? false });
    },
  } as unknown as BuildContext;
  return { ctx, undos, seen };
}

const step = (name: string, fn: (ctx: BuildContext, signal: AbortSignal) => Promise<void> | void): Step => ({ name, run: async (c, s) => fn(c, s) });

describe("runSteps", () => {
  it("runs steps in order, then undoes in reverse (skipping failure-only undos on success)", async () => {
    const { ctx, undos, seen } = makeCtx();
    const order: string[] = [];
    const r = await runSteps(ctx, undos, [
      step("a", (c) => c.defer("undo a", () => void order.push("undo a"))),
      step("b", (c) => c.defer("undo b", () => void order.push("undo b"), { onlyOnFailure: true })),
      step("c", (c) => c.defer("undo c", () => void order.push("undo c"))),
    ], new AbortController().signal);
    expect(r.ok).toBe(true);
    expect(order).toEqual(["undo c", "undo a"]);
    expect(seen.filter((e) => e.type === "step-end").map((e) => (e as { step: string }).step)).toEqual(["a", "b", "c"]);
  });

  it("stops at the first failure, undoes everything, keeps the error", async () => {
    const { ctx, undos } = makeCtx();
    const order: string[] = [];
    const r = await runSteps(ctx, undos, [
      step("a", (c) => c.defer("undo a", () => void order.push("undo a"))),
      step("b", (c) => {
        c.defer("undo b", () => void order.push("undo b"), { onlyOnFailure: true });
        throw new UserError("X", "bad thing");
      }),
      step("never", () => void order.push("never")),
    ], new AbortController().signal);
    expect(r.ok).toBe(false);
    expect(r.error).toBeInstanceOf(UserError);
    expect(r.error!.message).toBe("bad thing");
    expect(order).toEqual(["undo b", "undo a"]);
  });

  it("joins cleanup errors instead of swallowing them", async () => {
    const { ctx, undos, seen } = makeCtx();
    const r = await runSteps(ctx, undos, [
      step("a", (c) => {
        c.defer("first", () => {
          throw new Error("first broke");
        });
        c.defer("second", () => {
          throw new Error("second broke");
        });
      }),
    ], new AbortController().signal);
    expect(r.ok).toBe(false);
    expect(r.error!.message).toMatch(/second: second broke; first: first broke/);
    expect(seen.filter((e) => e.type === "cleanup" && !e.ok)).toHaveLength(2);
  });

  it("an abort during a step becomes AbortError and still undoes", async () => {
    const { ctx, undos } = makeCtx();
    const ac = new AbortController();
    const order: string[] = [];
    const r = await runSteps(ctx, undos, [
      step("a", (c) => c.defer("undo a", () => void order.push("undo a"))),
      step("wait", (_c, signal) => new Promise((_, reject) => {
        signal.addEventListener("abort", () => reject(new Error("aborted")));
        setTimeout(() => ac.abort(new AbortError("interrupted by SIGINT")), 10);
      })),
    ], ac.signal);
    expect(r.error).toBeInstanceOf(AbortError);
    expect(r.error!.exitCode).toBe(130);
    expect(order).toEqual(["undo a"]);
  });

  it("--on-error=abort leaves things in place on failure", async () => {
    const { ctx, undos } = makeCtx("abort");
    const order: string[] = [];
    const r = await runSteps(ctx, undos, [
      step("a", (c) => c.defer("undo a", () => void order.push("undo a"))),
      step("b", () => {
        throw new BuildError("B", "boom");
      }),
    ], new AbortController().signal);
    expect(r.ok).toBe(false);
    expect(order).toEqual([]);
    expect(undos).toHaveLength(1);
  });

  it("wraps unexpected errors as BuildError INTERNAL", async () => {
    const { ctx, undos } = makeCtx();
    const r = await runSteps(ctx, undos, [step("a", () => {
      throw new TypeError("oops");
    })], new AbortController().signal);
    expect(r.error).toBeInstanceOf(BuildError);
    expect(r.error!.code).toBe("INTERNAL");
  });
});

describe("journal", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-journal-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("pending entries are added-but-not-done, newest first", () => {
    const lines = [
      { op: "add", entry: { kind: "dir", path: "/a" } },
      { op: "add", entry: { kind: "process", pid: 5, match: "vmkiln-x" } },
      { op: "done", entry: { kind: "dir", path: "/a" } },
      { op: "add", entry: { kind: "file", path: "/f" } },
    ].map((r) => JSON.stringify(r)).join("\n") + "\n{torn";
    expect(pendingEntries(lines)).toEqual([{ kind: "file", path: "/f" }, { kind: "process", pid: 5, match: "vmkiln-x" }]);
  });

  it("journals of live processes are not dead", () => {
    const j = new Journal("b1", dir);
    j.add({ kind: "dir", path: "/x" });
    expect(deadJournals(dir)).toEqual([]); // our own pid is alive
    j.close();
  });
});
