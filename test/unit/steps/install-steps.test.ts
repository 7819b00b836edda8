// The install steps against a recording driver: boot command (values, boot_wait, key interval,
// keystroke capability), installer media (label, rendered content), serve-http (guest address,
// rendering), and wait-install (stop → restart without media; the never-fetched deadline).
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { KeyEvent } from "../../../src/bootcommand/events.js";
import { eventsToText } from "../../../src/bootcommand/text.js";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver, VmHandle } from "../../../src/pipeline/driver.js";
import { bootCommandStep } from "../../../src/steps/boot-command.js";
import { installerMediaStep } from "../../../src/steps/installer-media.js";
import { serveHttpStep } from "../../../src/steps/serve-http.js";
import { waitInstallStep } from "../../../src/steps/wait-install.js";
import { specFromObject } from "../../../src/template/load.js";
import { blkid, hasTool, tool } from "../media/readers.js";
import path from "node:path";
import { tempDir } from "../../helpers/tmp.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const vm: VmHandle = { id: "vm1", driver: "qemu" };

function recorder(opts: { keystrokes?: boolean; stopAfterMs?: number } = {}) {
  const calls: string[] = [];
  const keys: KeyEvent[][] = [];
  const driver = {
    name: "qemu",
    capabilities: { sources: ["iso"], keystrokes: opts.keystrokes ?? true, exports: ["qcow2"] },
    sendKeys: (_vm: VmHandle, k: KeyEvent[]) => {
      keys.push(k);
      calls.push("sendKeys");
      return Promise.resolve();
    },
    guestHostAddress: (bind: string) => (bind === "127.0.0.1" ? "10.0.2.2" : bind),
    waitForGuestStop: (_vm: VmHandle, o: { timeoutMs: number }, signal: AbortSignal) =>
      new Promise<boolean>((resolve) => {
        calls.push(`waitForGuestStop ${o.timeoutMs}`);
        const t = setTimeout(() => resolve(true), opts.stopAfterMs ?? 0);
        signal.addEventListener("abort", () => clearTimeout(t));
      }),
    restart: (_vm: VmHandle, o: { removeInstallerMedia: boolean }) => {
      calls.push(`restart removeInstallerMedia=${o.removeInstallerMedia}`);
      return Promise.resolve();
    },
    sshEndpoint: () => Promise.resolve({ host: "127.0.0.1", port: 2222 }),
  } as unknown as Driver;
  return { driver, calls, keys };
}

const undos: Array<() => unknown> = [];
afterEach(async () => {
  for (const u of undos.splice(0).reverse()) await u();
});

function context(template: Record<string, unknown>, driver: Driver): BuildContext {
  const spec = specFromObject(
    { name: "inst", source: { iso: { path: "./images/installer-iso.stub", checksum: "none" } }, drivers: { qemu: { disk_size: "4G" } }, ...template },
    { baseDir: GOOD, env: {} },
  );
  const events = new EventBus();
  return {
    spec,
    driver,
    events,
    buildId: "b1",
    buildDir: tempDir("vmkiln-steps-"),
    vm,
    sshKey: { privateKey: "k", publicKey: "ssh-ed25519 AAAAbuild vmkiln", privateKeyPath: "/k" },
    artifacts: [],
    timings: [],
    durations: {},
    defer: (_what: string, fn: () => unknown) => undos.push(fn),
  } as unknown as BuildContext;
}

describe("boot command step", () => {
  it("waits boot.wait, substitutes the HTTP address and types through the driver", async () => {
    const { driver, keys } = recorder();
    const ctx = context({ boot: { wait: "50ms", key_interval: "5ms", command: ["a{{ .HTTPPort }}${http.ip}<enter>"] } }, driver);
    ctx.http = { server: undefined as never, guestIp: "10.0.2.2", port: 8, url: "http://10.0.2.2:8", prefix: "" };
    const t0 = performance.now();
    await bootCommandStep.run(ctx, new AbortController().signal);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    const typed = keys[0]!.map((k) => (k.kind === "press" ? k.key : k.kind === "wait" ? `~${k.ms}` : k.kind));
    expect(typed).toEqual(["a", "~5", "8", "~5", "1", "~5", "0", "~5", "period", "~5", "0", "~5", "period", "~5", "2", "~5", "period", "~5", "2", "~5", "enter"]);
  });

  it("a URL built from {{ .HTTPPort }} gets the server's path prefix after the port", async () => {
    const { driver, keys } = recorder();
    const ctx = context({ boot: { wait: 0, key_interval: 0, command: ["ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg ${http.url}/a {{ .HTTPPort }}{{ .HTTPPrefix }}"] } }, driver);
    ctx.http = { server: undefined as never, guestIp: "10.0.2.2", port: 8, url: "http://10.0.2.2:8/pfx", prefix: "/pfx" };
    await bootCommandStep.run(ctx, new AbortController().signal);
    expect(eventsToText(keys[0]!)).toBe("ks=http://10.0.2.2:8/pfx/ks.cfg http://10.0.2.2:8/pfx/a 8/pfx");
  });

  it("refuses a driver without keystrokes", async () => {
    const { driver } = recorder({ keystrokes: false });
    const ctx = context({ boot: { wait: 0, command: ["<enter>"] } }, driver);
    await expect(bootCommandStep.run(ctx, new AbortController().signal)).rejects.toThrow(/^boot\.command: the qemu driver cannot type keys$/);
  });
});

describe("installer media step", () => {
  it.runIf(hasTool("blkid") && hasTool("mtype"))("writes an OEMDRV floppy with the rendered kickstart", async () => {
    const dir = tempDir("vmkiln-ks-");
    writeFileSync(join(dir, "ks.cfg"), "sshkey --username=b \"${ssh.public_key}\"\n");
    const ctx = context({ install_media: { type: "floppy", label: "OEMDRV", content: { "ks.cfg": { file: join(dir, "ks.cfg") } } } }, recorder().driver);
    await installerMediaStep.run(ctx, new AbortController().signal);
    expect(ctx.installerMedia).toEqual({ path: join(ctx.buildDir, "install-media.img"), kind: "floppy" });
    expect(blkid(ctx.installerMedia!.path).LABEL).toBe("OEMDRV");
    expect(tool("mtype", ["-i", ctx.installerMedia!.path, "::ks.cfg"])).toBe('sshkey --username=b "ssh-ed25519 AAAAbuild vmkiln"\n');
  });

  it.runIf(hasTool("blkid"))("writes a cidata CD for autoinstall", async () => {
    const ctx = context({ install_media: { label: "cidata", content: { "user-data": "#cloud-config\n", "meta-data": "instance-id: ${name}\n" } } }, recorder().driver);
    await installerMediaStep.run(ctx, new AbortController().signal);
    expect(ctx.installerMedia?.kind).toBe("cd");
    expect(blkid(ctx.installerMedia!.path)).toMatchObject({ LABEL: "cidata", TYPE: "iso9660" });
  });
});

describe("serve http + wait for install", () => {
  it("serves rendered content at the guest address, then restarts without media once the guest stops", async () => {
    const { driver, calls } = recorder({ stopAfterMs: 300 });
    const ctx = context({ http: { content: { "/ks.cfg": "url ${http.url} key ${ssh.public_key}" } }, install: { timeout: "1m" } }, driver);
    await serveHttpStep.run(ctx, new AbortController().signal);
    expect(ctx.http).toMatchObject({ guestIp: "10.0.2.2", url: `http://10.0.2.2:${ctx.http!.port}${ctx.http!.prefix}` });
    const body = await (await fetch(`http://127.0.0.1:${ctx.http!.port}${ctx.http!.prefix}/ks.cfg`)).text();
    expect(body).toBe(`url http://10.0.2.2:${ctx.http!.port}${ctx.http!.prefix} key ssh-ed25519 AAAAbuild vmkiln`);
    await waitInstallStep.run(ctx, new AbortController().signal);
    expect(calls).toEqual(["waitForGuestStop 60000", "restart removeInstallerMedia=true"]);
    expect(ctx.sshEndpoint).toEqual({ host: "127.0.0.1", port: 2222 });
  });

  it("fails when the installer never fetches its file, without waiting for the install timeout", async () => {
    const { driver, calls } = recorder({ stopAfterMs: 60_000 });
    const ctx = context({ http: { content: { "/preseed.cfg": "x" }, expect_timeout: "300ms" }, install: { timeout: "1h" } }, driver);
    await serveHttpStep.run(ctx, new AbortController().signal);
    const t0 = performance.now();
    await expect(waitInstallStep.run(ctx, new AbortController().signal)).rejects.toThrow(/^the VM never fetched \/preseed\.cfg from http:\/\/127\.0\.0\.1:\d+ within 300ms$/);
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(calls).not.toContain("restart removeInstallerMedia=true");
  });
});
