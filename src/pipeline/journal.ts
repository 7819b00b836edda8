// Crash safety (docs/architecture.md "Crash safety: the journal and gc"): before creating anything
// outside the process, append it to a journal in the build's state dir. `vmkiln gc` reads the
// journals of dead builds and removes what they left.
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type JournalEntry =
  | { kind: "dir"; path: string }
  | { kind: "process"; pid: number; match: string } // kill only if /proc/PID/cmdline contains match
  | { kind: "file"; path: string }
  | { kind: "remote"; driver: string; id: string; detail?: Record<string, string> };

export interface JournalRecord {
  op: "add" | "done";
  entry: JournalEntry;
  time: string;
}

export function stateDir(): string {
  const base = process.env.VMKILN_STATE_DIR ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), ".local", "state"), "vmkiln");
  return join(base, "journal");
}

export class Journal {
  readonly file: string;

  constructor(readonly buildId: string, dir = stateDir()) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${buildId}.${process.pid}.jsonl`);
  }

  /** Call before creating the thing. Synchronous so a crash right after still finds it. */
  add(entry: JournalEntry): void {
    this.write({ op: "add", entry, time: new Date().toISOString() });
  }

  /** Call after the thing is gone (or handed over as an artifact). */
  done(entry: JournalEntry): void {
    this.write({ op: "done", entry, time: new Date().toISOString() });
  }

  /** Entries added and not marked done yet, newest first: what `vmkiln gc` would remove. */
  pending(): JournalEntry[] {
    try {
      return pendingEntries(readFileSync(this.file, "utf8"));
    } catch {
      return [];
    }
  }

  /** The build ended and everything it journaled is accounted for. */
  close(): void {
    rmSync(this.file, { force: true });
  }

  private write(rec: JournalRecord): void {
    appendFileSync(this.file, JSON.stringify(rec) + "\n");
  }
}

export interface DeadJournal {
  file: string;
  pid: number;
  /** Entries added and not marked done, newest first (undo order). */
  pending: JournalEntry[];
}

/** Journals whose owning process is gone. */
export function deadJournals(dir = stateDir()): DeadJournal[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: DeadJournal[] = [];
  for (const name of names) {
    const m = /\.(\d+)\.jsonl$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pidAlive(pid)) continue;
    const file = join(dir, name);
    out.push({ file, pid, pending: pendingEntries(readFileSync(file, "utf8")) });
  }
  return out;
}

/** Marks `entry` done in a dead build's journal (`vmkiln gc` removed it; the rest stays for next time). */
export function markDone(file: string, entry: JournalEntry): void {
  const rec: JournalRecord = { op: "done", entry, time: new Date().toISOString() };
  appendFileSync(file, JSON.stringify(rec) + "\n");
}

export function pendingEntries(text: string): JournalEntry[] {
  const live: JournalEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let rec: JournalRecord;
    try {
      rec = JSON.parse(line) as JournalRecord;
    } catch {
      continue; // a torn last line from a crash
    }
    const key = JSON.stringify(rec.entry);
    if (rec.op === "add") live.push(rec.entry);
    else {
      const i = live.findIndex((e) => JSON.stringify(e) === key);
      if (i >= 0) live.splice(i, 1);
    }
  }
  return live.reverse();
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One line naming what an entry stands for (gc's output, the build's leftover warning). */
export function describeEntry(e: JournalEntry): string {
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
