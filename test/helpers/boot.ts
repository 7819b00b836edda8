// Boots a disk image (an exported artifact) as a user would: a fresh cidata seed with another user
// and key, through the real QEMU driver; the image itself is never modified (qcow2 overlay).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { QemuDriver } from "../../drivers/qemu/index.js";
import { EventBus } from "../../src/log/events.js";
import { writeCidataIso } from "../../src/media/cidata.js";
import { Journal } from "../../src/pipeline/journal.js";
import type { VmHandle } from "../../src/pipeline/driver.js";
import type { QemuSpec } from "../../src/template/spec.js";
import { generateBuildKey } from "../../src/ssh/keys.js";
import type { SshSession } from "../../src/ssh/session.js";
import { waitForSsh } from "../../src/ssh/wait.js";

/** The VM the tests boot artifacts in: what a template's `drivers.qemu: {}` defaults to. */
export const TEST_QEMU_SPEC: QemuSpec = {
  accelerator: "auto", cpus: 2, memory: 1024, diskSize: undefined, diskMode: "overlay", firmware: "bios",
  machine: "q35", binary: "qemu-system-x86_64", sshHostPort: undefined, headless: true, extraArgs: [],
};

export interface BootedVm {
  ssh: SshSession;
  hostKey: string;
  username: string;
  port: number;
  privateKeyPath: string;
  /** Warnings the driver emitted (accelerator fallback, forced power-off). */
  warnings: string[];
  /** Every log line the driver emitted, as `level: message`. */
  logs: string[];
  /** The driver's shutdown (the shared power-off escalation) on this VM; the session is closed first. */
  shutdown(opts: { timeoutMs: number; guestInitiated: boolean }, signal?: AbortSignal): Promise<void>;
  /** The last lines of the serial console (the kernel logs there: console=ttyS0). */
  consoleTail(lines: number): Promise<string>;
  /** Runs a command, returns stdout; throws on failure. */
  sh(cmd: string): Promise<string>;
  stop(): Promise<void>;
}

export async function bootImage(image: string, opts: { username?: string; format?: string; timeoutMs?: number; log?: boolean } = {}): Promise<BootedVm> {
  const username = opts.username ?? "tester";
  const dir = await mkdtemp(join(tmpdir(), "vmkiln-boot-"));
  const events = new EventBus();
  const warnings: string[] = [];
  const logs: string[] = [];
  events.subscribe((e) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
  events.subscribe((e) => e.type === "log" && logs.push(`${e.level}: ${e.message}`));
  if (opts.log ?? process.env.VMKILN_TEST_VERBOSE) events.subscribe((e) => e.type === "log" && process.stderr.write(`[boot] ${e.message}\n`));
  const journal = new Journal(`test-boot-${Date.now()}`);
  const driver = new QemuDriver(
    TEST_QEMU_SPEC,
    22,
    events,
    journal,
  );
  let vm: VmHandle | undefined;
  const stop = async () => {
    if (vm) await driver.destroyVm(vm);
    await rm(dir, { recursive: true, force: true });
    journal.close();
  };
  try {
    const key = await generateBuildKey(dir, "vmkiln-test");
    const cidata = join(dir, "cidata.iso");
    await writeCidataIso(cidata, {
      metaData: stringify({ "instance-id": `boot-${Date.now()}`, "local-hostname": "booted" }),
      userData: "#cloud-config\n" + stringify({ users: ["default", { name: username, shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [key.publicKey] }] }),
      networkConfig: "",
    });
    const signal = new AbortController().signal;
    vm = await driver.createVm(
      { name: `vmkiln-boot-${Date.now()}`, buildId: "boot", buildDir: dir, sourceDisk: { path: image, format: opts.format }, installerIso: undefined, cidataIso: cidata, diskSize: undefined, firmware: "bios" },
      signal,
    );
    await driver.start(vm, signal);
    const ep = await driver.sshEndpoint(vm);
    const r = await waitForSsh({
      target: { host: ep.host, port: ep.port, username, privateKey: key.privateKey },
      timeoutMs: opts.timeoutMs ?? 300_000,
      events,
      signal,
      vmExited: driver.exited(vm),
      consoleTail: () => driver.consoleTail(vm!, 30),
    });
    return {
      ssh: r.session,
      hostKey: r.hostKey,
      username,
      port: ep.port,
      privateKeyPath: key.privateKeyPath,
      warnings,
      logs,
      shutdown: async (o, s = signal) => {
        await r.session.close();
        await driver.shutdown(vm!, o, s);
      },
      consoleTail: (n) => driver.consoleTail(vm!, n),
      sh: (cmd) => r.session.capture(cmd, { signal, timeoutMs: 120_000 }),
      stop: async () => {
        await r.session.close();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
