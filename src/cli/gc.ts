// `vmkiln gc`: removes what killed builds left behind, from their journals (docs/architecture.md
// "Crash safety: the journal and gc"). A journal goes only once everything in it is removed: an entry
// gc could not remove (no credentials, vCenter unreachable, a busy file) stays for the next run, and
// gc exits 1.
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { deadJournals, describeEntry, markDone, pidAlive, type JournalEntry } from "../pipeline/journal.js";
import type { CliIO } from "./io.js";
import { driverGc } from "./registry.js";

export async function gcCommand(o: { dryRun?: boolean }, io: CliIO): Promise<number> {
  const dead = deadJournals();
  let removed = 0;
  let failed = 0;
  for (const j of dead) {
    let kept = 0;
    for (const e of j.pending) {
      const what = describeEntry(e);
      if (o.dryRun) {
        io.out(`would remove ${what}`);
        continue;
      }
      try {
        await undo(e);
        // Recorded at once: a gc killed half-way, or one that fails later in this journal, does
        // not try this entry again.
        markDone(j.file, e);
        io.out(`removed ${what}`);
        removed++;
      } catch (err) {
        io.err(`could not remove ${what}: ${(err as Error).message}`);
        kept++;
      }
    }
    if (o.dryRun) continue;
    if (kept === 0) await rm(j.file, { force: true });
    else {
      failed += kept;
      io.err(`kept ${j.file}: ${kept} item(s) still to remove; run 'vmkiln gc' again once the cause is fixed`);
    }
  }
  if (dead.length === 0) io.out("nothing to clean up");
  else if (!o.dryRun) io.out(`cleaned ${dead.length} dead build(s): ${removed} item(s) removed${failed ? `, ${failed} could not be removed` : ""}`);
  return failed > 0 ? 1 : 0;
}

async function undo(e: JournalEntry): Promise<void> {
  switch (e.kind) {
    case "dir":
    case "file":
      await rm(e.path, { recursive: true, force: true });
      return;
    case "process": {
      if (!pidAlive(e.pid)) return;
      // Only kill it if the pid still belongs to that VM (pids are reused).
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${e.pid}/cmdline`, "utf8").replace(/\0/g, " ");
      } catch (err) {
        if (!pidAlive(e.pid)) return; // it exited meanwhile
        throw err;
      }
      if (!cmdline.includes(e.match)) return;
      process.kill(e.pid, "SIGKILL");
      return;
    }
    case "remote": {
      const gc = driverGc[e.driver];
      if (!gc) throw new Error(`no driver cleanup for ${e.driver}`);
      await gc(e, AbortSignal.timeout(300_000));
      return;
    }
  }
}
