// `vmkiln cache ls|rm|prune|export|import` (issue 17): the stage cache (src/layers/store.ts) and,
// for export/import, the source cache beside it.
import { UserError } from "../errors.js";
import { exportBundle, importBundle } from "../layers/bundle.js";
import { KEY_PATTERN, listStages, pruneStages, removeStage, stageDirs } from "../layers/store.js";
import { parseDuration, parseSize } from "../template/duration.js";
import type { CliIO } from "./io.js";

const human = (n: number) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

export async function cacheLs(o: { json?: boolean }, io: CliIO): Promise<number> {
  const list = await listStages(stageDirs());
  if (o.json) {
    io.out(JSON.stringify(list.map((e) => ({ key: e.key, stage: e.entry.stage, template: e.entry.template, driver: e.entry.driver, parent: e.entry.parent ?? null, size: e.size, created: e.entry.created, last_used: e.lastUsed.toISOString(), kept: e.entry.kept?.location ?? null }))));
    return 0;
  }
  for (const e of list) io.out(`${e.key.slice(0, 16)}  ${human(e.size).padStart(10)}  ${e.lastUsed.toISOString()}  ${e.entry.stage}  (${e.entry.template})${e.entry.kept ? `  kept: ${e.entry.kept.location}` : ""}`);
  if (list.length === 0) io.err("vmkiln: the stage cache is empty");
  return 0;
}

/** Full keys or unambiguous prefixes (at least 8 hex digits), as `cache ls` shows them. */
export async function cacheRm(keys: string[], io: CliIO): Promise<number> {
  const dirs = stageDirs();
  const all = await listStages(dirs);
  for (const k of keys) {
    if (!/^[0-9a-f]{8,64}$/.test(k)) throw new UserError("BAD_KEY", `cache rm ${k}: expected a stage key (8 to 64 hex digits, as 'vmkiln cache ls' shows)`);
    const match = all.filter((x) => x.key.startsWith(k));
    if (match.length === 0) throw new UserError("NO_SUCH_ENTRY", `cache rm ${k}: no stage cache entry has that key`);
    if (match.length > 1) throw new UserError("AMBIGUOUS_KEY", `cache rm ${k}: ${match.length} entries start with it; give more digits`);
  }
  for (const k of keys) {
    const e = all.find((x) => x.key.startsWith(k))!;
    if (KEY_PATTERN.test(e.key) && (await removeStage(dirs, e.key))) {
      io.out(`removed ${e.key}`);
      // A kept VM (vSphere template) is the hypervisor's: vmkiln never deletes it behind the user's back.
      if (e.entry.kept) io.err(`vmkiln: ${e.entry.kept.location} stays on ${e.entry.kept.driver}; remove it there if no longer needed`);
    }
  }
  return 0;
}

export async function cachePrune(o: { keep?: string; olderThan?: string; maxSize?: string; dryRun?: boolean }, io: CliIO): Promise<number> {
  if (o.keep === undefined && o.olderThan === undefined && o.maxSize === undefined) {
    throw new UserError("BAD_OPTION", "cache prune: give --keep N, --older-than DURATION and/or --max-size SIZE");
  }
  let keep: number | undefined;
  if (o.keep !== undefined) {
    if (!/^\d{1,9}$/.test(o.keep)) throw new UserError("BAD_OPTION", `--keep: expected a whole number of entries, got ${JSON.stringify(o.keep)}`);
    keep = Number(o.keep);
  }
  const olderThanMs = o.olderThan === undefined ? undefined : parseOr(() => parseDuration(o.olderThan!), `--older-than: expected a duration like 7d or 12h, got ${JSON.stringify(o.olderThan)}`);
  const maxBytes = o.maxSize === undefined ? undefined : parseOr(() => parseSize(o.maxSize!), `--max-size: expected a size like 50G, got ${JSON.stringify(o.maxSize)}`);
  const r = await pruneStages(stageDirs(), { ...(keep !== undefined ? { keep } : {}), ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}), dryRun: o.dryRun ?? false });
  const removed = r.removed;
  for (const e of removed) io.out(`${o.dryRun ? "would remove" : "removed"} ${e.key.slice(0, 16)}  ${human(e.size)}  ${e.entry.stage}`);
  for (const k of r.damaged) io.out(`${o.dryRun ? "would remove" : "removed"} ${k.slice(0, 16)}  (damaged: no readable entry.json)`);
  io.err(`vmkiln: ${removed.length} entr${removed.length === 1 ? "y" : "ies"} ${o.dryRun ? "would be " : ""}removed, ${human(removed.reduce((a, e) => a + e.size, 0))}; ${human(r.leftBytes)} left`);
  // Kept entries of a driver that keeps VMs (vSphere templates) stay on the hypervisor.
  const kept = removed.filter((e) => e.entry.kept);
  if (kept.length > 0) io.err(`vmkiln: ${kept.map((e) => e.entry.kept!.location).join(", ")} ${o.dryRun ? "would stay" : "stay"} on ${kept[0]!.entry.kept!.driver} (vmkiln does not delete templates); remove them there if no longer needed`);
  // Said, not failed: the prune did what it may; a build holding an entry is no error.
  if (r.short) io.err(`vmkiln: warning: --max-size ${o.maxSize} not reached: ${r.short}`);
  return 0;
}

function parseOr(f: () => number, message: string): number {
  let n: number;
  try {
    n = f();
  } catch {
    throw new UserError("BAD_OPTION", message);
  }
  if (!Number.isFinite(n) || n < 0) throw new UserError("BAD_OPTION", message);
  return n;
}

export async function cacheExport(o: { output?: string; force?: boolean }, io: CliIO): Promise<number> {
  if (!o.output) throw new UserError("BAD_OPTION", "cache export: -o <bundle.tar> is required");
  const r = await exportBundle(o.output, { force: o.force ?? false, signal: io.signal });
  io.out(`wrote ${o.output}: ${r.sources} source(s), ${r.stages} stage(s), ${human(r.bytes)}`);
  return 0;
}

export async function cacheImport(file: string, io: CliIO): Promise<number> {
  const r = await importBundle(file, { signal: io.signal });
  io.out(`imported ${file}: sources ${r.sources.added} added, ${r.sources.present} already there; stages ${r.stages.added} added, ${r.stages.present} already there`);
  return 0;
}
