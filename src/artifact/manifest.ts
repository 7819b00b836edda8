import { readFileSync } from "node:fs";
import type { BuildContext } from "../pipeline/context.js";

export const VMKILN_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();

export interface Manifest {
  vmkiln_version: string;
  build_id: string;
  template: { name: string; path: string };
  driver: string;
  source: { location: string; sha256: string };
  created: string;
  artifacts: Array<{ name: string; format: string; size: number; sha256: string }>;
  steps: Array<{ name: string; duration_ms: number }>;
  durations_ms: Record<string, number>;
  total_ms: number;
  /** Every generalize operation: done, off, skipped (why) or failed, with what it changed. */
  generalize: Array<{ operation: string; status: string; changes: string[] }>;
}

export function buildManifest(ctx: BuildContext): Manifest {
  return {
    vmkiln_version: VMKILN_VERSION,
    build_id: ctx.buildId,
    template: { name: ctx.spec.name, path: ctx.spec.templatePath },
    driver: ctx.driver.name,
    source: { location: ctx.source?.location ?? ctx.spec.source.location, sha256: ctx.source?.sha256 ?? "" },
    created: new Date().toISOString(),
    artifacts: ctx.artifacts.map((a) => ({ name: a.name, format: a.format, size: a.size, sha256: a.sha256 })),
    steps: ctx.timings.map((t) => ({ name: t.step.trim(), duration_ms: t.durationMs })),
    durations_ms: ctx.durations,
    total_ms: Math.round(Date.now() - ctx.startedAt),
    generalize: (ctx.generalized ?? []).map((r) => ({ operation: r.operation, status: r.status, changes: r.changes })),
  };
}
