// `vmkiln gc`: removes what killed builds left behind, from their journals (docs/architecture.md
// "Crash safety: the journal and gc").
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { deadJournals, pidAlive, type JournalEntry } from "../pipeline/journal.js";
import type { CliIO } from "./io.js";
import { driverGc } from "./registry.js";

export async function gcCommand(o: { dryRun?: boolean }, io: CliIO): Promise<number> {
  const dead = deadJournals();
  let removed = 0;
  for (const j of dead) {
    for (const e of j.pending) {
      const what = describe(e);
      if (o.dryRun) {
        io.out(`would remove ${what}`);
        continue;
      }
      try {
        await undo(e);
        io.out(`removed ${what}`);
        removed++;
      } catch (err) {
        io.err(`could not remove ${what}: ${(err as Error).message}`);
      }
    }
    if (!o.dryRun) await rm(j.file, { force: true });
  }
  if (dead.length === 0) io.out("nothing to clean up");
  else if (!o.dryRun) io.out(`cleaned ${dead.length} dead build(s), ${removed} item(s)`);
  return 0;
}

function describe(e: JournalEntry): string {
  switch (e.kind) {
    case "dir":
    case "file":
      return e.path;
    case "process":
      return `process ${e.pid} (${e.match})`;
    case "remote":
      return `${e.driver} object ${e.id}`;
  }
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
      const cmdline = readFileSync(`/proc/${e.pid}/cmdline`, "utf8").replace(/\0/g, " ");
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
