// The shell scripts are executed for real with bash in a scratch root, so these tests
// check behaviour, not just text.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { envPrefix, inlineScript, runCommand, writeStdinTo } from "../../../src/provision/shell.js";
import { finalCommand, powerOffCommand } from "../../../src/steps/shutdown.js";

describe("shell provisioner scripts", () => {
  it("stops at the first failing command and names it", () => {
    let stderr = "";
    try {
      execFileSync("bash", ["-c", inlineScript(["echo one", "false", "echo never"])], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      stderr = String((e as { stderr: Buffer }).stderr);
      expect((e as { status: number }).status).toBe(1);
    }
    expect(stderr).toMatch(/^__vmkiln_failed__ 1 false$/m);
  });
  it("keeps shell state from line to line", () => {
    expect(execFileSync("bash", ["-c", inlineScript(["cd /tmp", "X=5", "echo $PWD $X"])], { encoding: "utf8" }).trim()).toBe("/tmp 5");
  });
  it("env values are single-quoted", () => {
    expect(envPrefix({ A: "it's $HOME" })).toBe(`env A='it'\\''s $HOME' `);
    expect(envPrefix({})).toBe("");
  });
  it("sudo only when asked and not root", () => {
    expect(runCommand("/tmp/s", { env: {}, sudo: true }, "builder", "/bin/bash")).toBe("sudo -n /bin/bash '/tmp/s'");
    expect(runCommand("/tmp/s", { env: {}, sudo: true }, "root", undefined)).toBe("'/tmp/s'");
    expect(runCommand("/tmp/s", { env: { K: "v" }, sudo: false }, "builder", undefined)).toBe("env K='v' '/tmp/s'");
  });
});

describe("finalCommand (shutdown)", () => {
  const fast = { mode: "fast", command: undefined } as const;
  const all = { cloudInit: true, keepDefaultUser: false, buildUser: true, passwdBackups: true, network: true, hostname: true, dhcp: true, machineId: true, randomSeed: true, sshHostKeys: true, tmp: true, shellHistory: true, packageCache: true, logs: true, trim: true };
  const none = Object.fromEntries(Object.keys(all).map((k) => [k, k === "keepDefaultUser"])) as typeof all;
  it("cleans, then syncs, trims and powers off detached — as root", () => {
    const c = finalCommand({ username: "builder", generalize: all, shutdown: fast });
    expect(c.startsWith("sudo -n sh -c ")).toBe(true);
    const at = (s: string) => c.indexOf(s);
    for (const s of ["op_build_user", "exit 3", "sync", "fstrim -av", "systemctl --no-block poweroff --force"]) expect(at(s), s).toBeGreaterThan(0);
    // The cleaning (and its bail-out on a failed operation) comes before anything else.
    expect(at("op_build_user")).toBeLessThan(at("exit 3"));
    expect(at("exit 3")).toBeLessThan(at("\nsync"));
    expect(at("\nsync")).toBeLessThan(at("fstrim"));
    expect(at("fstrim")).toBeLessThan(at("poweroff --force"));
    execFileSync("sh", ["-n", "-c", c.replace(/^sudo -n sh -c /, "eval ")]);
  });
  it("with every operation off it only syncs and powers off", () => {
    const c = finalCommand({ username: "builder", generalize: none, shutdown: fast });
    expect(c).toBe(`sudo -n sh -c 'sync\nif [ -d /run/systemd/system ]; then systemctl --no-block poweroff --force; else nohup sh -c '\\''sleep 1; poweroff'\\'' >/dev/null 2>&1 & fi'`);
  });
  it("never removes root itself", () => {
    expect(finalCommand({ username: "root", generalize: { ...none, buildUser: true }, shutdown: fast })).toContain(`if [ "$BUILD_USER" != root ]; then remove_user`);
  });
});

describe("powerOffCommand", () => {
  it.each([
    [{ mode: "fast", command: undefined }, "if [ -d /run/systemd/system ]; then systemctl --no-block poweroff --force; else nohup sh -c 'sleep 1; poweroff' >/dev/null 2>&1 & fi"],
    [{ mode: "graceful", command: undefined }, "if [ -d /run/systemd/system ]; then systemctl --no-block poweroff; else nohup sh -c 'sleep 1; poweroff' >/dev/null 2>&1 & fi"],
    // The template's own command wins over mode, detached with a head start for the exit status.
    [{ mode: "fast", command: "shutdown -h now" }, "nohup sh -c 'sleep 1; shutdown -h now' >/dev/null 2>&1 &"],
  ] as const)("%j", (s, want) => {
    expect(powerOffCommand(s)).toBe(want);
  });
  it("is valid POSIX sh", () => {
    for (const mode of ["fast", "graceful"] as const) {
      const r = spawnSync("sh", ["-n", "-c", powerOffCommand({ mode, command: undefined })]);
      expect(r.status, String(r.stderr)).toBe(0);
    }
  });
});

describe("writeStdinTo (shell scripts travel on stdin)", () => {
  it("writes stdin to a private executable file, even with quotes in the path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmkiln-stdin-"));
    try {
      const file = join(dir, "it's a script.sh");
      const r = spawnSync("sh", ["-c", `${writeStdinTo(file)} && "$0"`, file], { input: "#!/bin/sh\necho ran\n", encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe("ran\n");
      expect((await stat(file)).mode & 0o777).toBe(0o700);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
