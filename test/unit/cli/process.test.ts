// The real CLI process on bad input: exit codes, timing, no hangs (issue 12). Each run has a kill timer,
// so a hang fails the test instead of the suite.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, runCliTimed, startCliTimed } from "../../helpers/built-cli.js";

const IMAGE = join(import.meta.dirname, "../../fixtures/templates/good/images/fixture.qcow2");
let dir: string;
beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "vmkiln-cli-process-"));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Node's own start-up under the current machine load, so "under 1 s" measures vmkiln, not the host. */
async function startupMs(): Promise<number> {
  const r = await runCliTimed(["--version"]);
  expect(r.code).toBe(0);
  return r.ms;
}

describe("validate: a template with only some top-level fields", () => {
  it("a template with only name: exits 2 in under 1 s, naming source and drivers (it hung at 100% CPU)", async () => {
    const base = await startupMs();
    const r = await runCliTimed(["validate", file("only-name.yaml", "name: x\n")], { timeoutMs: 15_000 });
    expect(r.killed, "vmkiln validate hung").toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/source: required/);
    expect(r.stderr).toMatch(/drivers: required/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.ms - base).toBeLessThan(1000);
  });

  it("a template without source: exits 2 naming source", async () => {
    const r = await runCliTimed(["validate", file("no-source.yaml", "name: x\ndrivers: { qemu: { cpus: 0 } }\n")], { timeoutMs: 15_000 });
    expect(r.killed, "vmkiln validate hung").toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/source: required/);
    expect(r.stderr).toMatch(/drivers\.qemu\.cpus/);
  });
});

describe("validate: hostile input is bad input (exit 2), never an internal error", () => {
  it("a YAML alias bomb exits 2 (it was 'internal error', exit 1)", async () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${Array(10).fill(`*${"abcdefghi"[i - 1]}`).join(", ")}]`);
    const r = await runCliTimed(["validate", file("bomb.yaml", levels.join("\n") + "\nname: x\n")]);
    expect(r.killed).toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmkiln: error: .*bomb\.yaml: YAML syntax error: too many alias expansions/);
    expect(r.stderr).not.toMatch(/internal error/);
  });

  it("JSON nested 100 000 deep exits 2 (it was 'internal error: Maximum call stack size exceeded')", async () => {
    const r = await runCliTimed(["validate", file("deep.json", '{"name":' + "[".repeat(100_000) + "]".repeat(100_000) + "}")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nested more than 64 levels deep/);
  });
});

describe("Ctrl-C while reading", () => {
  it("a template pipe nobody writes to: Ctrl-C exits 130 (the open waited forever)", async () => {
    const fifo = join(dir, "silent.fifo.yaml");
    execFileSync("mkfifo", [fifo]);
    const run = startCliTimed(["validate", fifo], { timeoutMs: 60_000 });
    // Wait until a thread of the CLI is blocked in open(2) on the pipe (the kernel's wait_for_partner):
    // its signal handlers are installed by then.
    for (let i = 0; i < 200 && !/wait_for_partner|fifo/.test(blockedIn(run.child.pid!)); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.killed).toBe(false);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted by SIGINT/);
  }, 90_000);
});

/** Where the process's threads wait in the kernel (/proc/PID/task/TID/wchan). */
function blockedIn(pid: number): string {
  try {
    return execFileSync("sh", ["-c", `cat /proc/${pid}/task/*/wchan 2>/dev/null; true`]).toString();
  } catch {
    return "";
  }
}

describe("Ctrl-C while the event loop is blocked", () => {
  it("during a long template parse: exit 130 and no result (it printed ok and exited 0)", async () => {
    // The template comes through a FIFO, so the test knows the CLI is reading it (its signal handlers
    // are installed) and when the parse starts: when the writer closes. 300 000 flow-list items take
    // seconds to parse (yaml's composer), under the 1 MiB cap.
    const fifo = join(dir, "big.fifo.yaml");
    execFileSync("mkfifo", [fifo]);
    const run = startCliTimed(["validate", fifo], { timeoutMs: 120_000 });
    const fh = await open(fifo, "w"); // returns once the CLI has opened it for reading
    await fh.write(`name: big\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\ncloud_init: { user_data: { pad: [${"1,".repeat(299_999)}1] } }\n`);
    await fh.close();
    await new Promise((r) => setTimeout(r, 100));
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.killed).toBe(false);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/interrupted by SIGINT/);
  }, 180_000);
});

describe("Ctrl-C while reading a var-file", () => {
  it("a -var-file pipe nobody writes to: Ctrl-C exits 130 (it was read synchronously: the loop itself waited)", async () => {
    const fifo = join(dir, "silent-vars.fifo.yaml");
    execFileSync("mkfifo", [fifo]);
    const t = file("for-vars.yaml", `name: v\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\n`);
    const run = startCliTimed(["validate", "-var-file", fifo, t], { timeoutMs: 60_000 });
    for (let i = 0; i < 200 && !/wait_for_partner|fifo/.test(blockedIn(run.child.pid!)); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.killed).toBe(false);
    expect(r.code, r.stderr).toBe(130);
  }, 90_000);
});
