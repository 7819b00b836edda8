import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gcCommand } from "../../../src/cli/gc.js";
import { EventBus } from "../../../src/log/events.js";

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
});
