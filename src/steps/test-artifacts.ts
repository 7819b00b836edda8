// The template's `test:` section: after export, boot each chosen artifact as its user would and
// check it (src/check/run.ts, the same as `vmkiln test`). A failed check fails the build (exit 1)
// but the artifacts stay where export put them, and manifest.json records what was found.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, UserError } from "../errors.js";
import type { Manifest, TestSummary } from "../artifact/manifest.js";
import { prepareChecks, testArtifact, type TestRun } from "../check/run.js";
import { resultLine, summarize } from "../check/results.js";
import type { Step } from "../pipeline/step.js";

export function testSummary(runs: TestRun[]): TestSummary {
  return {
    ok: runs.every((r) => r.ok),
    artifacts: runs.map((r) => {
      const s = summarize(r.results, r.durationMs);
      return {
        artifact: r.artifact.split("/").pop()!,
        ok: r.ok,
        total: s.total,
        passed: s.passed,
        failed: s.failed,
        skipped: s.skipped,
        failures: [...r.results.filter((x) => x.outcome === "fail").map(resultLine), ...(r.error ? [`error: ${r.error.message}`] : [])],
      };
    }),
  };
}

export const testArtifactsStep: Step = {
  name: "test",
  async run(ctx, signal) {
    const t = ctx.spec.test!;
    const factory = ctx.options.testDriverFactory;
    if (!factory) throw new UserError("TEST_DRIVER", "test: no driver to boot the artifacts with (the qemu driver is needed)");
    const chosen = t.formats.map((f) => {
      const a = ctx.artifacts.find((x) => x.format === f);
      if (!a) throw new UserError("TEST_FORMAT", `test.formats: this build exported no ${f} (output.formats: ${ctx.spec.output.formats.join(", ")})`);
      return a;
    });
    const opts = {
      checks: t.checks, varsFile: t.vars, gossBinary: t.gossBinary, firstBoot: t.firstBoot,
      retryTimeoutMs: t.retryTimeoutMs, sleepMs: t.sleepMs, timeoutMs: t.timeoutMs, debug: ctx.options.debug,
    };
    const checks = prepareChecks(opts);
    const runs: TestRun[] = [];
    for (const a of chosen) runs.push(await testArtifact(a.path, opts, { driverFactory: factory, events: ctx.events, signal, checks }));
    const summary = testSummary(runs);
    // The artifacts stay; manifest.json (not listed in SHA256SUMS) gains the result.
    const mpath = join(ctx.spec.output.directory, "manifest.json");
    const manifest = JSON.parse(await readFile(mpath, "utf8")) as Manifest;
    manifest.test = summary;
    await writeFile(mpath, JSON.stringify(manifest, null, 2) + "\n");
    const failedRun = runs.find((r) => r.error);
    if (failedRun?.error && failedRun.error.exitCode === 130) throw failedRun.error;
    if (!summary.ok) {
      const failures = summary.artifacts.flatMap((a) => a.failures.map((f) => `${a.artifact}: ${f}`));
      throw new BuildError("TEST_FAILED", `test: ${failures.length} check(s) failed; the artifacts stay in ${ctx.spec.output.directory}:\n  ${failures.slice(0, 20).join("\n  ")}${failures.length > 20 ? `\n  (and ${failures.length - 20} more in manifest.json)` : ""}`);
    }
  },
};
