import { readFileSync } from "node:fs";
import type { BuildContext } from "../pipeline/context.js";

/**
 * vmkiln's own package.json version. The module runs from dist/src/artifact/ (built) or from
 * src/artifact/ (a checkout, tests), two different depths: a fixed "../../../package.json" found
 * nothing from a checkout and every manifest said 0.0.0. So walk up to the package that is vmkiln.
 */
export const VMKILN_VERSION: string = findVersion(new URL(".", import.meta.url));

export function findVersion(start: URL): string {
  for (let dir = start; ; dir = new URL("..", dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "vmkiln" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no (readable) package.json here: keep walking
    }
    if (new URL("..", dir).href === dir.href) return "0.0.0";
  }
}

/**
 * What the build's own boots were, for `vmkiln test`'s first-boot checks (src/check/first-boot.ts):
 * a booted image must show none of it. Public facts only: fingerprints, never a key.
 */
export interface BuildIdentity {
  /** The cidata instance-id the build booted with. */
  instance_id: string;
  /** /etc/machine-id during the build (before generalize emptied it). */
  machine_id?: string | undefined;
  /** The host key pinned at the build's first SSH connection (SHA256:…). */
  host_key_fingerprint?: string | undefined;
  /** Every SSH host key the build's guest had (SHA256:…). */
  host_keys: string[];
  /** The build's SSH user. */
  user: string;
  /** The build's SSH key (SHA256:… of its public key). */
  key_fingerprint?: string | undefined;
}

/** The outcome of the template's `test:` section (`vmkiln test` after export). */
export interface TestSummary {
  ok: boolean;
  artifacts: Array<{ artifact: string; ok: boolean; total: number; passed: number; failed: number; skipped: number; failures: string[] }>;
}

export interface Manifest {
  vmkiln_version: string;
  build_id: string;
  template: { name: string; path: string };
  driver: string;
  source: { location: string; sha256: string };
  created: string;
  /**
   * `mtime_ns`: the file's modification time (nanoseconds since the epoch, a decimal string: a JSON
   * number cannot hold it exactly) when the manifest was written. The output guard compares it to
   * tell a file vmkiln wrote from one changed in place since (steps/output-guard.ts).
   */
  artifacts: Array<{ name: string; format: string; size: number; sha256: string; mtime_ns?: string }>;
  steps: Array<{ name: string; duration_ms: number }>;
  durations_ms: Record<string, number>;
  total_ms: number;
  /** Every generalize operation: done, off, skipped (why) or failed, with what it changed. */
  generalize: Array<{ operation: string; status: string; changes: string[] }>;
  /** Recorded when generalize begins (the build's machine-id, host keys, user, key fingerprint). */
  build_identity?: BuildIdentity;
  /** Set by the `test:` section after export. */
  test?: TestSummary;
}

/** `mtimesNs`: artifact name → its modification time (see `Manifest.artifacts`), when known. */
export function buildManifest(ctx: BuildContext, mtimesNs: ReadonlyMap<string, string> = new Map()): Manifest {
  // The text fields come from the template or the guest and may hold a secret (a sensitive variable
  // in the name, user:password@ in a URL, a sensitive build username in a generalize change such as
  // "removed user …"); digests, ids, statuses and times cannot, and are left alone.
  const text = (s: string) => ctx.events.redactor.text(s);
  return {
    vmkiln_version: VMKILN_VERSION,
    build_id: ctx.buildId,
    template: { name: text(ctx.spec.name), path: text(ctx.spec.templatePath) },
    driver: ctx.driver.name,
    source: { location: text(ctx.source?.location ?? ctx.spec.source.location), sha256: ctx.source?.sha256 ?? "" },
    created: new Date().toISOString(),
    artifacts: ctx.artifacts.map((a) => {
      const mtime = mtimesNs.get(a.name);
      return { name: a.name, format: a.format, size: a.size, sha256: a.sha256, ...(mtime === undefined ? {} : { mtime_ns: mtime }) };
    }),
    steps: ctx.timings.map((t) => ({ name: text(t.step.trim()), duration_ms: t.durationMs })),
    durations_ms: ctx.durations,
    total_ms: Math.round(Date.now() - ctx.startedAt),
    generalize: (ctx.generalized ?? []).map((r) => ({ operation: r.operation, status: r.status, changes: r.changes.map(text) })),
    ...(ctx.buildIdentity ? { build_identity: ctx.buildIdentity } : {}),
  };
}
