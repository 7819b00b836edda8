// `vmkiln test <artifact>… [--checks FILE]… [--vars FILE] [--driver qemu] [--json] [--junit FILE]`:
// boot each artifact as its user would and check it (src/check/run.ts). Exit 0 when every check
// passed, 1 when one failed (or the boot did), 2 for bad input (a gossfile key vmkiln does not
// take, a missing file), 130 on Ctrl-C.
import { constants } from "node:fs";
import { access, lstat, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { UserError } from "../errors.js";
import { parseDuration, parseSize } from "../template/duration.js";
import { FIRST_BOOT_CHECKS, type FirstBootCheck } from "../check/first-boot.js";
import { junitXml, summarize, summaryLine } from "../check/results.js";
import { prepareChecks, testArtifact, type TestRun } from "../check/run.js";
import type { DriverName } from "../template/spec.js";
import type { CliIO } from "./io.js";
import { driverRegistry } from "./registry.js";

export interface TestCommandOptions {
  checks: string[];
  vars?: string;
  driver: string;
  json?: boolean;
  junit?: string;
  skip: string[];
  firstBoot?: boolean;
  gossBinary?: string;
  retryTimeout?: string;
  sleep?: string;
  timeout?: string;
  diskSize?: string;
  manifest?: string;
  debug?: boolean;
}

function duration(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  try {
    return parseDuration(v);
  } catch (err) {
    throw new UserError("BAD_OPTION", `${flag}: ${(err as Error).message}`);
  }
}

export async function testCommand(artifacts: string[], o: TestCommandOptions, io: CliIO): Promise<number> {
  const factory = driverRegistry[o.driver as DriverName];
  if (o.driver !== "qemu" || !factory) throw new UserError("BAD_OPTION", `--driver ${o.driver}: vmkiln test boots images with qemu (the only driver that boots a local disk file)`);
  for (const s of o.skip) {
    if (!(FIRST_BOOT_CHECKS as readonly string[]).includes(s)) throw new UserError("BAD_OPTION", `--skip ${s}: not a first-boot check (${FIRST_BOOT_CHECKS.join(", ")})`);
  }
  const firstBoot = Object.fromEntries(FIRST_BOOT_CHECKS.map((k) => [k, o.firstBoot !== false && !o.skip.includes(k)])) as Record<FirstBootCheck, boolean>;
  let diskSize: number | undefined;
  if (o.diskSize !== undefined) {
    try {
      diskSize = parseSize(o.diskSize);
    } catch (err) {
      throw new UserError("BAD_OPTION", `--disk-size: ${(err as Error).message}`);
    }
  }
  const opts = {
    checks: o.checks.map((c) => resolve(c)),
    varsFile: o.vars === undefined ? undefined : resolve(o.vars),
    gossBinary: o.gossBinary === undefined ? undefined : resolve(o.gossBinary),
    firstBoot,
    retryTimeoutMs: duration("--retry-timeout", o.retryTimeout, 0),
    sleepMs: duration("--sleep", o.sleep, 1000),
    timeoutMs: duration("--timeout", o.timeout, 10 * 60_000),
    diskSize,
    manifest: o.manifest,
    debug: o.debug ?? false,
  };
  if (opts.sleepMs <= 0) throw new UserError("BAD_OPTION", "--sleep: must be more than 0");
  if (opts.timeoutMs <= 0) throw new UserError("BAD_OPTION", "--timeout: must be more than 0");
  if (o.junit !== undefined) await checkJunitTarget(o.junit);
  if (o.manifest !== undefined && artifacts.length > 1) throw new UserError("BAD_OPTION", "--manifest: names one build's manifest; test one artifact with it");
  // Every gossfile is read and every matcher compiled before the first boot.
  const checks = prepareChecks(opts);
  const runs: TestRun[] = [];
  for (const a of artifacts) {
    const run = await testArtifact(a, opts, { driverFactory: factory, events: io.events, signal: io.signal, checks });
    runs.push(run);
    if (run.error) {
      if (o.junit) await writeJunit(o.junit, runs);
      throw run.error;
    }
  }
  if (o.junit) await writeJunit(o.junit, runs);
  const all = runs.flatMap((r) => r.results);
  const s = summarize(all, runs.reduce((n, r) => n + r.durationMs, 0));
  if (!o.json) io.err(`vmkiln test: ${runs.length} artifact(s): ${summaryLine(s)}`);
  return runs.every((r) => r.ok) ? 0 : 1;
}

const JUNIT_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="vmkiln test"';

/**
 * Before anything boots: --junit's directory must exist, and a file already there is replaced only
 * when it is an earlier `vmkiln test` report (vmkiln overwrites nothing it did not write).
 */
async function checkJunitTarget(path: string): Promise<void> {
  const dir = dirname(resolve(path));
  const d = await stat(dir).catch(() => undefined);
  if (!d?.isDirectory()) throw new UserError("BAD_OPTION", `--junit ${path}: no directory ${dir}`);
  await access(dir, constants.W_OK).catch(() => {
    throw new UserError("BAD_OPTION", `--junit ${path}: cannot write in ${dir}`);
  });
  const f = await lstat(path).catch(() => undefined);
  if (!f) return;
  const head = f.isFile() ? await readFile(path, "utf8").then((t) => t.slice(0, JUNIT_HEAD.length), () => "") : "";
  if (head !== JUNIT_HEAD) throw new UserError("BAD_OPTION", `--junit ${path}: exists and is not an earlier vmkiln test report; vmkiln does not overwrite it`);
}

async function writeJunit(path: string, runs: TestRun[]): Promise<void> {
  try {
    await writeFile(path, junitXml(runs.map((r) => ({ artifact: r.artifact, results: r.results, durationMs: r.durationMs }))));
  } catch (err) {
    throw new UserError("JUNIT_WRITE", `--junit ${path}: ${(err as Error).message}`);
  }
}
