// The generalize and shell scripts are executed for real with bash in a scratch root, so these tests
// check behaviour, not just text.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generalizeScript, removeUserScript } from "../../../src/provision/generalize.js";
import { envPrefix, inlineScript, runCommand, writeStdinTo } from "../../../src/provision/shell.js";
import { GENERALIZE_FAILED_EXIT, finalCommand, powerOffCommand } from "../../../src/steps/shutdown.js";

describe("removeUserScript", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "vmkiln-root-"));
    await mkdir(join(root, "etc/sudoers.d"), { recursive: true });
    await mkdir(join(root, "home/builder"), { recursive: true });
    await writeFile(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nbuilder:x:1000:1000::" + join(root, "home/builder") + ":/bin/bash\n_chrony:x:100:102::/var/lib/chrony:/usr/sbin/nologin\nbuilderx:x:1001:1001::/home/builderx:/bin/sh\n");
    await writeFile(join(root, "etc/shadow"), "root:*:1::::::\nbuilder:!:1::::::\n_chrony:!:1::::::\nbuilderx:!:1::::::\n");
    await writeFile(join(root, "etc/group"), "root:x:0:\nsudo:x:27:builder\nadm:x:4:syslog,builder,builderx\nbuilder:x:1000:\nbuilderx:x:1001:\nshared:x:1002:builder,other\n");
    await writeFile(join(root, "etc/gshadow"), "root:*::\nsudo:*::builder\nadm:*:builder:syslog,builder\nbuilder:!::\n");
    await writeFile(join(root, "etc/subuid"), "builder:100000:65536\nbuilderx:165536:65536\n");
    await writeFile(join(root, "etc/subgid"), "builder:100000:65536\n");
    await writeFile(join(root, "etc/sudoers.d/90-cloud-init-users"), "# Created by cloud-init\n\n# User rules for builder\nbuilder ALL=(ALL) NOPASSWD:ALL\n");
    await writeFile(join(root, "etc/sudoers.d/keep"), "builderx ALL=(ALL) ALL\n");
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("removes exactly the build user's lines, memberships, sudoers drop-in and home", async () => {
    // Run the real script against the scratch root by rewriting its absolute paths.
    const script = removeUserScript("builder").replaceAll("/etc/", `${root}/etc/`).replace('getent passwd "$u"', `grep "^$u:" ${root}/etc/passwd`);
    execFileSync("bash", ["-c", script]);
    const f = (p: string) => readFile(join(root, p), "utf8");
    expect(await f("etc/passwd")).toBe("root:x:0:0:root:/root:/bin/bash\n_chrony:x:100:102::/var/lib/chrony:/usr/sbin/nologin\nbuilderx:x:1001:1001::/home/builderx:/bin/sh\n");
    expect(await f("etc/shadow")).toBe("root:*:1::::::\n_chrony:!:1::::::\nbuilderx:!:1::::::\n");
    expect(await f("etc/group")).toBe("root:x:0:\nsudo:x:27:\nadm:x:4:syslog,builderx\nbuilderx:x:1001:\nshared:x:1002:other\n");
    expect(await f("etc/gshadow")).toBe("root:*::\nsudo:*::\nadm:*::syslog\n");
    expect(await f("etc/subuid")).toBe("builderx:165536:65536\n");
    expect(await f("etc/subgid")).toBe("");
    await expect(f("etc/sudoers.d/90-cloud-init-users")).rejects.toThrow(); // only comments were left
    expect(await f("etc/sudoers.d/keep")).toBe("builderx ALL=(ALL) ALL\n");
    await expect(f("home/builder/.bashrc")).rejects.toThrow();
    expect(execFileSync("ls", [join(root, "home")], { encoding: "utf8" })).toBe("");
  });

  it("quotes the user name for the shell", () => {
    expect(removeUserScript("a'b")).toContain(`u='a'\\''b'`);
  });
});

describe("generalizeScript", () => {
  it("includes only the switched-on parts", () => {
    const all = generalizeScript({ cloudInit: true, machineId: true, sshHostKeys: true, buildUser: true, logs: true, trim: true });
    expect(all).toContain("cloud-init clean --logs --seed");
    expect(all).toContain(": > /etc/machine-id");
    expect(all).toContain("rm -f /var/lib/dbus/machine-id");
    expect(all).toContain("rm -f /etc/ssh/ssh_host_*");
    expect(all).toContain("truncate -s 0");
    const none = generalizeScript({ cloudInit: false, machineId: false, sshHostKeys: false, buildUser: false, logs: false, trim: false });
    expect(none.trim()).toBe("set -e");
    execFileSync("bash", ["-n", "-c", all]); // syntax check
  });
});

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
  it("removes the user, trims, then powers off detached — as root", () => {
    const c = finalCommand({ username: "builder", removeUser: true, trim: true, shutdown: fast });
    expect(c.startsWith("sudo -n sh -c ")).toBe(true);
    expect(c).toContain("fstrim -av");
    expect(c).toContain("systemctl --no-block poweroff --force");
    expect(c.indexOf("sed -i")).toBeLessThan(c.indexOf("fstrim"));
    expect(c.indexOf("fstrim")).toBeLessThan(c.indexOf("poweroff"));
  });
  it("never removes root", () => {
    expect(finalCommand({ username: "root", removeUser: true, trim: false, shutdown: fast })).not.toContain("passwd");
  });
  it("generalizes first, in the same command (issue 19: one SSH exec less)", () => {
    const c = finalCommand({ username: "builder", removeUser: true, trim: true, shutdown: fast, generalize: "set -e\nrm -f /etc/ssh/ssh_host_*\n" });
    expect(c.indexOf("ssh_host_")).toBeLessThan(c.indexOf("sed -i"));
    expect(c.indexOf("ssh_host_")).toBeLessThan(c.indexOf("poweroff"));
  });
  it("a failing generalize exits GENERALIZE_FAILED_EXIT and never reaches the power-off; a good one does", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmkiln-final-"));
    try {
      const marker = join(dir, "powered-off");
      const run = (generalize: string) =>
        spawnSync("sh", ["-c", finalCommand({ username: "root", removeUser: false, trim: false, shutdown: { mode: "fast", command: `touch '${marker}'` }, generalize })], { encoding: "utf8" });
      const bad = run("set -e\nfalse\necho not-reached\n");
      expect(bad.status).toBe(GENERALIZE_FAILED_EXIT);
      expect(bad.stdout).not.toContain("not-reached");
      expect(bad.stderr).toContain("generalize failed with exit status 1");
      await new Promise((r) => setTimeout(r, 1500));
      expect(existsSync(marker)).toBe(false);
      const good = run("set -e\ntrue\n");
      expect(good.status, good.stderr).toBe(0);
      for (let i = 0; i < 40 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(marker)).toBe(true); // the detached power-off ran
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
