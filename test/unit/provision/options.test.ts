// Provisioner options against real host processes (shell_local runs bash): no VM needed.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, UserError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { appliesTo, runWithOptions } from "../../../src/provision/options.js";
import { runShellLocal } from "../../../src/provision/shell-local.js";
import type { ProvisionContext } from "../../../src/provision/types.js";
import type { ProvisionerOptions, ShellLocalProvisioner } from "../../../src/template/spec.js";

const opts = (o: Partial<ProvisionerOptions> = {}): ProvisionerOptions => ({ pauseBeforeMs: 0, maxRetries: 0, timeoutMs: undefined, only: undefined, except: [], ...o });

describe("only/except", () => {
  it.each([
    [{ only: undefined, except: [] }, "qemu", true],
    [{ only: ["qemu"], except: [] }, "qemu", true],
    [{ only: ["virtualbox", "vsphere"], except: [] }, "qemu", false],
    [{ only: undefined, except: ["qemu"] }, "qemu", false],
    [{ only: undefined, except: ["vsphere"] }, "qemu", true],
    [{ only: ["qemu"], except: ["qemu"] }, "qemu", false],
  ] as const)("%j with %s → %s", (o, driver, expected) => {
    expect(appliesTo({ only: o.only ? [...o.only] : undefined, except: [...o.except] }, driver)).toBe(expected);
  });
});

describe("runWithOptions with shell_local", () => {
  let dir: string;
  const events = new EventBus();
  const seen: BuildEvent[] = [];
  events.subscribe((e) => seen.push(e));
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-opts-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const ctx = (signal: AbortSignal): ProvisionContext => ({
    ssh: undefined as never, // shell_local never touches the guest
    events,
    signal,
    username: "builder",
    label: "provision[0] glue",
    buildDir: dir,
    buildName: "t",
    templateDir: dir,
  });
  const local = (inline: string[]): ShellLocalProvisioner => ({ type: "shell_local", name: "glue", options: opts(), inline, script: undefined, env: {} });

  it("retries a failing step and then fails with the last error", async () => {
    const counter = join(dir, "count");
    // Each attempt fails with a different command so we can tell which error is reported.
    const p = local([`n=$(( $(cat ${counter} 2>/dev/null || echo 0) + 1 )); echo $n > ${counter}`, `test "attempt-$n" = never`]);
    const signal = new AbortController().signal;
    const err = await runWithOptions(opts({ maxRetries: 2 }), signal, (s) => runShellLocal(p, ctx(s), 0), { events, label: "provision[0] glue", retryDelayMs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toBe('provision[0] glue: command `test "attempt-$n" = never` failed with exit code 1 (failed 3 attempts; this was the last)');
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(counter, "utf8").trim()).toBe("3");
    const warns = seen.filter((e) => e.type === "log" && e.level === "warn").map((e) => (e as { message: string }).message);
    expect(warns.filter((m) => /attempt \d of 3 failed/.test(m))).toHaveLength(2);
  });

  it("succeeds on a later attempt and says which", async () => {
    const flag = join(dir, "flag");
    const p = local([`if [ ! -e ${flag} ]; then touch ${flag}; false; fi`]);
    const r = await runWithOptions(opts({ maxRetries: 3 }), new AbortController().signal, (s) => runShellLocal(p, ctx(s), 1), { events, label: "x", retryDelayMs: 10 });
    expect(r.attempts).toBe(2);
  });

  it("waits pause_before first", async () => {
    const started = performance.now();
    let ranAt = 0;
    await runWithOptions(opts({ pauseBeforeMs: 300 }), new AbortController().signal, async () => {
      ranAt = performance.now();
    }, { events, label: "x" });
    expect(ranAt - started).toBeGreaterThanOrEqual(295);
  });

  it("ends an attempt at its timeout (the process is killed) and retries it", async () => {
    // `exec`: bash itself is the sleeping process, so the kill reaches it (children of a killed bash
    // would outlive it: run.ts kills the process, not its group).
    const p = local(["exec sleep 30"]);
    const started = performance.now();
    const err = await runWithOptions(opts({ timeoutMs: 300, maxRetries: 1 }), new AbortController().signal, (s) => runShellLocal(p, ctx(s), 2), { events, label: "provision[0] glue", retryDelayMs: 10 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("provision[0] glue: timed out after 0.3 s (timeout) (failed 2 attempts; this was the last)");
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("does not retry a UserError", async () => {
    let n = 0;
    const err = await runWithOptions(opts({ maxRetries: 5 }), new AbortController().signal, async () => {
      n++;
      throw new UserError("X", "bad template");
    }, { events, label: "x", retryDelayMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(n).toBe(1);
  });

  it("stops at once on abort, even during pause_before", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("stop")), 50);
    const started = performance.now();
    await expect(runWithOptions(opts({ pauseBeforeMs: 60_000 }), ac.signal, async () => undefined, { events, label: "x" })).rejects.toMatchObject({ exitCode: 130 });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("gives shell_local the VM's address in its environment", async () => {
    const out: string[] = [];
    const bus = new EventBus();
    bus.subscribe((e) => e.type === "output" && out.push(e.line));
    const p = local(['echo "$VMKILN_SSH_USER@$VMKILN_SSH_HOST:$VMKILN_SSH_PORT $VMKILN_SSH_KEY $VMKILN_KNOWN_HOSTS $FOO"']);
    p.env = { FOO: "bar" };
    await runShellLocal(p, { ...ctx(new AbortController().signal), events: bus, access: { host: "127.0.0.1", port: 2222, username: "builder", privateKeyPath: "/k", knownHostsPath: "/kh" } }, 3);
    expect(out).toEqual(["builder@127.0.0.1:2222 /k /kh bar"]);
  });
});
