import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { debugStepHook } from "../../../src/cli/debug-steps.js";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import { breakpointMode, isCi } from "../../../src/provision/breakpoint.js";
import { restartCommand } from "../../../src/provision/restart.js";
import { waitForEnter } from "../../../src/util/prompt.js";

describe("breakpoint", () => {
  it.each([
    [{ disable: true, waitForFile: undefined }, { ci: false, tty: true }, "disabled"],
    [{ disable: false, waitForFile: "/tmp/go" }, { ci: true, tty: true }, "ci"],
    [{ disable: false, waitForFile: "/tmp/go" }, { ci: false, tty: false }, "file"],
    [{ disable: false, waitForFile: undefined }, { ci: false, tty: true }, "enter"],
    [{ disable: false, waitForFile: undefined }, { ci: false, tty: false }, "no-tty"],
  ] as const)("%j %j → %s", (p, io, mode) => {
    expect(breakpointMode(p, io)).toBe(mode);
  });
  it.each([
    [{ CI: "true" }, true],
    [{ CI: "1" }, true],
    [{ CI: "false" }, false],
    [{ CI: "" }, false],
    [{}, false],
  ])("isCi(%j) = %s", (env, ci) => {
    expect(isCi(env)).toBe(ci);
  });
  it("waitForEnter resolves on a newline and rejects on abort", async () => {
    const input = new PassThrough();
    const p = waitForEnter(new AbortController().signal, input);
    input.write("x");
    input.write("\n");
    await expect(p).resolves.toBeUndefined();
    const ac = new AbortController();
    const q = waitForEnter(ac.signal, new PassThrough());
    ac.abort(new Error("stop"));
    await expect(q).rejects.toMatchObject({ exitCode: 130 });
  });
});

describe("--debug step mode", () => {
  const ctx = (withVm: boolean) =>
    ({
      events: new EventBus(),
      spec: { ssh: { username: "builder" } },
      ...(withVm ? { vm: { id: "x" }, sshEndpoint: { host: "127.0.0.1", port: 40222 }, sshKey: { privateKeyPath: "/b/ssh_key" }, knownHostsPath: "/b/known_hosts" } : {}),
    }) as unknown as BuildContext;

  it("on a terminal: prints the ssh command once the VM exists and waits for Enter before each step", async () => {
    const c = ctx(true);
    const msgs: string[] = [];
    c.events.subscribe((e) => e.type === "log" && msgs.push(e.message));
    const waited: string[] = [];
    const hook = debugStepHook({ tty: true, ci: false, waitForEnter: async () => void waited.push("enter") });
    await hook(c, "provision", new AbortController().signal);
    expect(waited).toEqual(["enter"]);
    expect(msgs[0]).toBe(
      "debug: ssh into the VM: ssh -i /b/ssh_key -p 40222 -o IdentitiesOnly=yes -o UserKnownHostsFile=/b/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o UpdateHostKeys=no builder@127.0.0.1",
    );
    expect(msgs[1]).toMatch(/next step "provision": press Enter/);
  });
  it("without a terminal (or in CI) never blocks", async () => {
    const c = ctx(false);
    const msgs: string[] = [];
    c.events.subscribe((e) => e.type === "log" && msgs.push(e.message));
    const hook = debugStepHook({ tty: false, ci: false, waitForEnter: () => new Promise(() => undefined) });
    await hook(c, "prepare", new AbortController().signal);
    await hook(c, "fetch source", new AbortController().signal);
    expect(msgs).toEqual(["debug: not pausing between steps (stdin is not a terminal)"]);
  });
});

describe("restart", () => {
  it("detaches the reboot so the command returns before sshd stops", () => {
    expect(restartCommand("reboot", "builder")).toBe("sudo -n sh -c 'nohup sh -c '\\''sleep 1; reboot'\\'' >/dev/null 2>&1 &'");
    expect(restartCommand("systemctl reboot", "root")).toMatch(/^sh -c /);
  });
});
