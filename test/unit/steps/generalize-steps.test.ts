// The generalize and shutdown steps against a scripted SSH connection (no command runs anywhere:
// the final command would clean the machine it runs on): what they log, report, throw and ask of
// the driver for each way the guest side can end.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildManifest } from "../../../src/artifact/manifest.js";
import { BuildError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { specSecrets } from "../../../src/log/redact.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver, VmHandle } from "../../../src/pipeline/driver.js";
import { CLOUD_INIT_IDLE, REPORT_MARK } from "../../../src/provision/generalize.js";
import type { Communicator } from "../../../src/ssh/communicator.js";
import { IDENTITY_SCRIPT } from "../../../src/steps/build-identity.js";
import { generalizeStep } from "../../../src/steps/generalize.js";
import { shq } from "../../../src/ssh/session.js";
import { shutdownStep } from "../../../src/steps/shutdown.js";
import { specFromObject } from "../../../src/template/load.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const vm: VmHandle = { id: "vm1", driver: "qemu" };
const signal = new AbortController().signal;

/**
 * An SSH connection that answers each exec with scripted stdout lines and an exit status. The
 * generalize step's first exec reads the build's identity (steps/build-identity.ts): it gets a
 * fixed answer of its own and is not counted in `commands`.
 */
function scripted(answers: Array<{ lines: string[]; exitCode: number | null; disconnected?: boolean }>) {
  const commands: string[] = [];
  const ssh = {
    exec(command: string, opts: { onLine?: (s: "stdout" | "stderr", l: string) => void }) {
      if (command.includes(shq(IDENTITY_SCRIPT))) {
        for (const l of [`machine-id ${"ab".repeat(16)}`, "256 SHA256:hostkey1 root@x (ED25519)", "host-key SHA256:hostkey1"]) opts.onLine?.("stdout", l);
        return Promise.resolve({ exitCode: 0, signal: undefined, disconnected: false });
      }
      commands.push(command);
      const a = answers.shift() ?? { lines: [], exitCode: 0 };
      for (const l of a.lines) opts.onLine?.("stdout", l);
      return Promise.resolve({ exitCode: a.exitCode, signal: undefined, disconnected: a.disconnected ?? false });
    },
    close: () => Promise.resolve(),
  } as unknown as Communicator;
  return { ssh, commands };
}

function context(template: Record<string, unknown>, ssh: Communicator) {
  const spec = specFromObject({ name: "gen", source: { cloud_image: { path: "./images/fixture.qcow2", checksum: "none" } }, drivers: { qemu: {} }, ...template }, { baseDir: GOOD, env: {} });
  const events = new EventBus();
  const seen: BuildEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const shutdowns: unknown[] = [];
  const driver = { name: "qemu", shutdown: (_vm: VmHandle, o: unknown) => (shutdowns.push(o), Promise.resolve()) } as unknown as Driver;
  const ctx = {
    spec, driver, events, ssh, vm, buildId: "b1", buildDir: "/nonexistent", startedAt: Date.now(), artifacts: [], timings: [], durations: {},
    sshKey: { privateKey: "k", publicKey: "ssh-ed25519 AAAAbuild vmkiln", privateKeyPath: "/k" },
    defer: () => undefined,
  } as unknown as BuildContext;
  const logs = () => seen.filter((e) => e.type === "log").map((e) => `${(e as { level: string }).level}: ${(e as { message: string }).message}`);
  const outputs = () => seen.filter((e) => e.type === "output").map((e) => (e as { line: string }).line);
  return { ctx, logs, outputs, shutdowns };
}

const R = (op: string, text: string) => `${REPORT_MARK} ${op} ${text}`;

describe("shutdown step", () => {
  it("logs one line per operation, keeps report lines out of the output, records them for the manifest, powers off", async () => {
    const { ssh, commands } = scripted([{ lines: [R("build_user", "begin"), R("build_user", "- removed user builder"), R("build_user", "ok"), "fstrim noise", R("trim", "begin"), R("trim", "- /: 1 GiB trimmed"), R("trim", "ok")], exitCode: 0 }]);
    const { ctx, logs, outputs, shutdowns } = context({ generalize: { cloud_init: false, machine_id: false } }, ssh);
    await shutdownStep.run(ctx, signal);
    expect(commands[0]).toMatch(/^sudo -n sh -c /);
    expect(outputs()).toEqual(["fstrim noise"]);
    expect(logs()).toContain("info: generalize build_user done in 0.0 s: removed user builder");
    expect(logs()).toContain("info: generalize trim done in 0.0 s: /: 1 GiB trimmed");
    expect(logs().some((l) => /^info: power-off command ran \d+\.\d s in the guest; the VM was off \d+\.\d s later$/.test(l))).toBe(true);
    expect(logs()).toContain("info: generalize cloud_init off");
    expect(logs()).toContain("info: generalize network skipped: cloud_init is off, so the first boot would not write it again");
    expect(shutdowns).toEqual([{ timeoutMs: 300_000, guestInitiated: true }]);
    const m = buildManifest(ctx);
    expect(m.generalize.find((g) => g.operation === "build_user")).toEqual({ operation: "build_user", status: "done", changes: ["removed user builder"] });
    expect(m.generalize.find((g) => g.operation === "machine_id")).toEqual({ operation: "machine_id", status: "off", changes: [] });
    expect(m.generalize).toHaveLength(15);
  });

  it("manifest.json's generalize changes are masked: a sensitive build username does not reach it", async () => {
    const user = "zq-secret-builder";
    const { ssh } = scripted([{ lines: [R("build_user", "begin"), R("build_user", `- removed user ${user} (uid 1000) from passwd, shadow`), R("build_user", "ok")], exitCode: 0 }]);
    const { ctx, logs } = context(
      { variables: { builder: { default: user, sensitive: true } }, ssh: { username: "${var.builder}" }, generalize: { cloud_init: false, machine_id: false } },
      ssh,
    );
    ctx.events.redactor.addAll(specSecrets(ctx.spec)); // as build() does
    expect(ctx.spec.ssh.username).toBe(user);
    await shutdownStep.run(ctx, signal);
    expect(logs().join("\n")).not.toContain(user);
    const m = buildManifest(ctx);
    expect(JSON.stringify(m)).not.toContain(user);
    expect(m.generalize.find((g) => g.operation === "build_user")?.changes).toEqual(["removed user *** (uid 1000) from passwd, shadow"]);
  });

  it("a failed operation fails the build before power-off, naming it and what it printed", async () => {
    const { ssh } = scripted([{ lines: [R("cloud_init", "begin"), "clean: permission denied", R("cloud_init", "failed 1"), R("logs", "begin"), R("logs", "ok")], exitCode: 3 }]);
    const { ctx, logs, shutdowns } = context({}, ssh);
    const err = await shutdownStep.run(ctx, signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).code).toBe("GENERALIZE_FAILED");
    expect((err as Error).message).toBe("generalize: cloud_init failed (output: clean: permission denied)");
    expect(logs()).toContain("warn: generalize cloud_init failed in 0.0 s: output: clean: permission denied");
    expect(shutdowns).toEqual([]); // the runner's undo destroys the VM (or --on-error=abort keeps it)
  });

  it("every operation off: only sync and power-off run", async () => {
    const { ssh, commands } = scripted([{ lines: [], exitCode: 0 }]);
    const { ctx, shutdowns } = context({ generalize: false }, ssh);
    await shutdownStep.run(ctx, signal);
    expect(commands[0]).not.toContain(REPORT_MARK);
    expect(shutdowns).toHaveLength(1);
  });
});

describe("generalize step", () => {
  it("first records the build's identity for vmkiln test (manifest.json build_identity)", async () => {
    const { ssh } = scripted([{ lines: ['{"v1": {"datasource": "NoCloud", "errors": []}}'], exitCode: 0 }]);
    const { ctx } = context({}, ssh);
    await generalizeStep.run(ctx, signal);
    expect(ctx.buildIdentity).toMatchObject({ instance_id: "vmkiln-b1", machine_id: "ab".repeat(16), host_keys: ["SHA256:hostkey1"], user: ctx.spec.ssh.username });
    expect(ctx.buildIdentity!.key_fingerprint).toMatch(/^SHA256:/);
  });

  it("waits for cloud-init, and says so", async () => {
    const { ssh, commands } = scripted([{ lines: ['{"v1": {"datasource": "NoCloud", "errors": []}}'], exitCode: 0 }]);
    const { ctx, logs } = context({}, ssh);
    await generalizeStep.run(ctx, signal);
    expect(commands).toHaveLength(2); // the wait, then the default user's configuration
    expect(commands[0]).toContain("result.json");
    expect(logs()).toContain("info: cloud-init finished this boot; no stage is running");
  });

  it("reads the default user on the host and hands it to the cleaning; an unreadable answer leaves it to the guest", async () => {
    const dump = ["vmkiln-files", "/etc/cloud/cloud.cfg", "vmkiln-lines", "/etc/cloud/cloud.cfg:system_info:", "/etc/cloud/cloud.cfg:  default_user: {name: debian}", "vmkiln-grep-exit 0"];
    const { ssh, commands } = scripted([{ lines: ['{"v1": {"errors": []}}'], exitCode: 0 }, { lines: dump, exitCode: 0 }, { lines: [], exitCode: 0 }]);
    const { ctx, logs } = context({}, ssh);
    await generalizeStep.run(ctx, signal);
    expect(commands[1]).toContain("cloud.cfg.d");
    expect(ctx.defaultUser).toBe("debian");
    expect(logs()).toContain("info: cloud-init's default user is debian");
    await shutdownStep.run(ctx, signal);
    expect(commands[2]).toContain("DEFAULT_USER_KNOWN=1");
    expect(commands[2]).toMatch(/\nDEFAULT_USER=[^\n]*debian/);

    const odd = scripted([{ lines: ['{"v1": {"errors": []}}'], exitCode: 0 }, { lines: [...dump.slice(0, -1), "/etc/cloud/cloud.cfg:merge_how: dict(replace)", "vmkiln-grep-exit 0"], exitCode: 0 }, { lines: [], exitCode: 0 }]);
    const c2 = context({}, odd.ssh);
    await generalizeStep.run(c2.ctx, signal);
    expect(c2.ctx.defaultUser).toBeUndefined();
    expect(c2.logs().some((l) => l.startsWith("info: the default user is left to cloud-init's own reader in the guest"))).toBe(true);
    await shutdownStep.run(c2.ctx, signal);
    expect(odd.commands[2]).toContain("DEFAULT_USER_KNOWN=0");

    // A dump over the cap: not read (memory stays bounded), the guest decides.
    const huge = scripted([{ lines: ['{"v1": {"errors": []}}'], exitCode: 0 }, { lines: [...dump.slice(0, -1), ...Array.from({ length: 5000 }, () => `/etc/cloud/cloud.cfg:# ${"x".repeat(1000)}`), "vmkiln-grep-exit 0"], exitCode: 0 }]);
    const c3 = context({}, huge.ssh);
    await generalizeStep.run(c3.ctx, signal);
    expect(c3.ctx.defaultUser).toBeUndefined();

    // keep_default_user: nothing to read.
    const kept = scripted([{ lines: ['{"v1": {"errors": []}}'], exitCode: 0 }]);
    await generalizeStep.run(context({ generalize: { keep_default_user: true } }, kept.ssh).ctx, signal);
    expect(kept.commands).toHaveLength(1);
  });

  it("reports the boot's cloud-init errors as a warning and goes on", async () => {
    const { ssh } = scripted([{ lines: ['{"v1": {"errors": ["(\'scripts_user\', RuntimeError(\'x\'))"]}}'], exitCode: 0 }]);
    const { ctx, logs } = context({}, ssh);
    await generalizeStep.run(ctx, signal);
    expect(logs().some((l) => l.startsWith("warn: cloud-init finished this boot with errors") && l.includes("scripts_user"))).toBe(true);
  });

  it("nothing to wait for without cloud-init; a dropped wait fails the build", async () => {
    const idle = context({}, scripted([{ lines: [], exitCode: CLOUD_INIT_IDLE }]).ssh);
    await generalizeStep.run(idle.ctx, signal);
    expect(idle.logs()).toContain("info: cloud-init is not installed or did not run in this boot: nothing to wait for");
    const dropped = context({}, scripted([{ lines: [], exitCode: null, disconnected: true }]).ssh);
    await expect(generalizeStep.run(dropped.ctx, signal)).rejects.toThrow(/waiting for cloud-init to finish this boot ended with a dropped connection/);
  });

  it("does not wait when cloud_init is off", async () => {
    const { ssh, commands } = scripted([]);
    await generalizeStep.run(context({ generalize: { cloud_init: false } }, ssh).ctx, signal);
    expect(commands.filter((c) => c.includes("result.json"))).toEqual([]);
  });
});
