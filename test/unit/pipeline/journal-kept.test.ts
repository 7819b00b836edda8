// Issue 12 item 3: what a build could not remove stays in its journal, for the next `vmkiln gc`.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { build } from "../../../src/build.js";
import { EventBus } from "../../../src/log/events.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { pendingEntries, stateDir } from "../../../src/pipeline/journal.js";
import type { Step } from "../../../src/pipeline/step.js";
import type { BuildSpec } from "../../../src/template/spec.js";

describe("build: a failed undo keeps its journal entry", () => {
  let work: string;
  const saved: Record<string, string | undefined> = {};
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), "vmkiln-journal-kept-"));
    for (const k of ["VMKILN_STATE_DIR", "VMKILN_TMPDIR"]) saved[k] = process.env[k];
    process.env.VMKILN_STATE_DIR = join(work, "state");
    process.env.VMKILN_TMPDIR = work;
  });
  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(work, { recursive: true, force: true });
  });

  /** A driver whose plan is one step that journals a remote object and defers an undo that fails. */
  function driverWith(steps: Step[]): Driver {
    return {
      name: "qemu",
      capabilities: { sources: ["cloud-image"], keystrokes: false, exports: ["qcow2"] },
      plan: () => steps,
    } as unknown as Driver;
  }
  const spec = { name: "t", source: { kind: "cloud-image" }, output: { formats: ["qcow2"], directory: "/nonexistent/out" }, ssh: { username: "u" } } as unknown as BuildSpec;
  const entry = { kind: "remote" as const, driver: "vsphere", id: "/DC0/vm/vmkiln-left", detail: { kind: "vm" } };

  async function run(steps: Step[]) {
    const events = new EventBus();
    const warnings: string[] = [];
    events.subscribe((e) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
    const r = await build({ spec, driverFactory: () => driverWith(steps), events, signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false } });
    const file = join(stateDir(), `${r.buildId}.${process.pid}.jsonl`);
    return { r, file, warnings };
  }

  const makeVm: Step = {
    name: "make vm",
    run: async (ctx) => {
      ctx.journal.add(entry);
      ctx.defer("destroy vm", () => {
        throw new Error("Destroy_Task: connection reset");
      });
    },
  };

  it("after a successful build whose cleanup failed", async () => {
    const { r, file, warnings } = await run([makeVm]);
    expect(r.ok).toBe(false);
    expect(r.error?.message).toMatch(/destroy vm: Destroy_Task: connection reset/);
    expect(existsSync(file)).toBe(true);
    expect(pendingEntries(readFileSync(file, "utf8"))).toEqual([entry]);
    expect(warnings.join("\n")).toMatch(/could not be removed.*vmkiln gc/s);
  });

  it("after a failed build whose cleanup failed", async () => {
    const { r, file } = await run([makeVm, { name: "boom", run: () => Promise.reject(new Error("step failed")) }]);
    expect(r.ok).toBe(false);
    expect(r.error?.message).toBe("step failed");
    expect(pendingEntries(readFileSync(file, "utf8"))).toEqual([entry]);
  });

  it("and the journal goes when everything was undone", async () => {
    const clean: Step = {
      name: "make vm",
      run: async (ctx) => {
        ctx.journal.add(entry);
        ctx.defer("destroy vm", () => ctx.journal.done(entry));
      },
    };
    const { r, file } = await run([clean]);
    expect(r.ok).toBe(true);
    expect(existsSync(file)).toBe(false);
  });
});
