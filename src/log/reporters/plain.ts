// Plain reporter for pipes and CI logs: one line per event, no cursor tricks.
import type { BuildEvent, EventSink } from "../events.js";

export interface ReporterOptions {
  write: (line: string) => void;
  debug: boolean;
}

export function plainReporter(o: ReporterOptions): EventSink {
  const lastPct = new Map<string, number>();
  return (e) => {
    const line = formatPlain(e, o.debug, lastPct, e.build);
    if (line !== undefined) o.write(line);
  };
}

/** With several builds at once, every line of one says which (`[name] `), progress keyed by it too. */
export function formatPlain(e: BuildEvent, debug: boolean, lastPct = new Map<string, number>(), build?: string): string | undefined {
  const line = formatEvent(e, debug, lastPct, build);
  return line === undefined || build === undefined ? line : `[${build}] ${line}`;
}

function formatEvent(e: BuildEvent, debug: boolean, lastPct: Map<string, number>, build: string | undefined): string | undefined {
  switch (e.type) {
    case "log":
      if (e.level === "debug" && !debug) return undefined;
      return `${e.level === "info" ? "" : e.level.toUpperCase() + ": "}${e.source ? `[${e.source}] ` : ""}${e.message}`;
    case "step-start":
      return `==> [${e.index + 1}/${e.total}] ${e.step}`;
    case "step-end":
      return e.ok ? `    ${e.step}: done in ${secs(e.durationMs)}` : `    ${e.step}: FAILED after ${secs(e.durationMs)}`;
    case "output":
      return `    ${e.source}: ${e.line}`;
    case "progress": {
      if (!e.total) return undefined;
      const pct = Math.floor((100 * e.done) / e.total / 25) * 25;
      const key = `${build ?? ""}\0${e.task}`;
      if ((lastPct.get(key) ?? -1) >= pct) return undefined;
      lastPct.set(key, pct);
      return `    ${e.task}: ${pct}%`;
    }
    case "progress-end":
      lastPct.delete(`${build ?? ""}\0${e.task}`);
      return undefined;
    case "cleanup":
      return e.ok ? (debug ? `    cleanup: ${e.what}` : undefined) : `WARN: cleanup failed: ${e.what}: ${e.error}`;
    case "artifact":
      return `    artifact ${e.name} (${bytes(e.size)}, sha256 ${e.sha256.slice(0, 16)}…)`;
    case "build-end":
      return e.ok ? `==> build finished in ${secs(e.durationMs)}: ${e.outputDir}` : `==> build failed after ${secs(e.durationMs)}`;
    case "check":
      return `    ${e.outcome === "pass" ? "PASS" : e.outcome === "fail" ? "FAIL" : "SKIP"} ${e.line}`;
    case "test-end":
      return `==> ${e.artifact}: ${e.ok ? "passed" : "FAILED"}: ${e.line}`;
  }
}

export function secs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
