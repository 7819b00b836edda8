import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gcCommand } from "../../../src/cli/gc.js";
import { EventBus } from "../../../src/log/events.js";
import { pendingEntries } from "../../../src/pipeline/journal.js";

describe("vmkiln gc", () => {
  let state: string;
  let prev: string | undefined;
  beforeEach(async () => {
    state = await mkdtemp(join(tmpdir(), "vmkiln-state-"));
    prev = process.env.VMKILN_STATE_DIR;
    process.env.VMKILN_STATE_DIR = state;
  });
  afterEach(async () => {
    if (prev === undefined) delete process.env.VMKILN_STATE_DIR;
    else process.env.VMKILN_STATE_DIR = prev;
    await rm(state, { recursive: true, force: true });
  });

  it("removes what a dead build journaled and not what it finished", async () => {
    const left = join(state, "left-behind");
    const finished = join(state, "finished");
    await mkdir(left);
    await mkdir(finished);
    // pid 2^22+1 is above the kernel's pid_max default: never alive.
    const deadPid = 4194305;
    const lines = [
      { op: "add", entry: { kind: "dir", path: left } },
      { op: "add", entry: { kind: "dir", path: finished } },
      { op: "done", entry: { kind: "dir", path: finished } },
      { op: "add", entry: { kind: "process", pid: deadPid, match: "vmkiln-x" } },
    ];
    await mkdir(join(state, "journal"));
    const jf = join(state, "journal", `b1.${deadPid}.jsonl`);
    await writeFile(jf, lines.map((l) => JSON.stringify({ ...l, time: "" })).join("\n") + "\n");
    const out: string[] = [];
    const io = { out: (l: string) => void out.push(l), err: (l: string) => void out.push(l), events: new EventBus(), signal: new AbortController().signal };
    expect(await gcCommand({ dryRun: true }, io)).toBe(0);
    expect(existsSync(left)).toBe(true);
    expect(out.some((l) => l.includes(`would remove ${left}`))).toBe(true);
    expect(await gcCommand({}, io)).toBe(0);
    expect(existsSync(left)).toBe(false);
    expect(existsSync(finished)).toBe(true); // marked done: not ours to remove
    expect(existsSync(jf)).toBe(false);
  });

  it("keeps what it could not remove in the journal and exits 1; the next gc retries only that", async () => {
    const left = join(state, "left-behind");
    await mkdir(left);
    const deadPid = 4194305;
    // A vSphere VM needs credentials gc does not have here: its removal fails.
    const vm = { kind: "remote", driver: "vsphere", id: "/DC0/vm/vmkiln-x", detail: { kind: "vm", url: "https://vc.invalid" } };
    const lines = [
      { op: "add", entry: { kind: "dir", path: left } },
      { op: "add", entry: vm },
    ];
    await mkdir(join(state, "journal"));
    const jf = join(state, "journal", `b2.${deadPid}.jsonl`);
    await writeFile(jf, lines.map((l) => JSON.stringify({ ...l, time: "" })).join("\n") + "\n");
    const saved = { u: process.env.VSPHERE_USERNAME, p: process.env.VSPHERE_PASSWORD };
    delete process.env.VSPHERE_USERNAME;
    delete process.env.VSPHERE_PASSWORD;
    try {
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l), events: new EventBus(), signal: new AbortController().signal };
      expect(await gcCommand({}, io)).toBe(1);
      expect(existsSync(left)).toBe(false);
      expect(err.join("\n")).toMatch(/could not remove vsphere object \/DC0\/vm\/vmkiln-x: set VSPHERE_USERNAME and VSPHERE_PASSWORD/);
      expect(existsSync(jf)).toBe(true);
      expect(pendingEntries(readFileSync(jf, "utf8"))).toEqual([vm]);

      // Still there on the next run, and still exit 1, until it can be removed.
      out.length = 0;
      expect(await gcCommand({}, io)).toBe(1);
      expect(out).not.toContain(`removed ${left}`);
      expect(pendingEntries(readFileSync(jf, "utf8"))).toEqual([vm]);
    } finally {
      if (saved.u !== undefined) process.env.VSPHERE_USERNAME = saved.u;
      if (saved.p !== undefined) process.env.VSPHERE_PASSWORD = saved.p;
    }
  });
});
