// The QEMU driver: qemu-img for disks, qemu-system for the VM, QMP for power and keys.
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ResultPromise } from "execa";
import { BuildError, UserError } from "../../src/errors.js";
import { spawnTool, tailLines } from "../../src/exec/run.js";
import type { EventBus } from "../../src/log/events.js";
import type { Driver, DriverFactoryContext, DiskFile, ExportRequest, KeyEvent, VmHandle, VmSpec } from "../../src/pipeline/driver.js";
import type { Journal } from "../../src/pipeline/journal.js";
import { escalatePowerOff, type PowerOffPrimitives } from "../../src/pipeline/power-off.js";
import type { QemuSpec } from "../../src/template/spec.js";
import { sleep } from "../../src/util/abort.js";
import { freePort, natGuestPeerAddress } from "../../src/util/net.js";
import { chooseAccel, isKvmCrashLine, probeAccel, type AccelChoice } from "./accel.js";
import { qemuArgs, type QemuCmdline } from "./cmdline.js";
import { QmpClient } from "./qmp.js";
import { copyVarsTemplate, explicitOvmf, probeOvmf, type OvmfFirmware } from "./ovmf.js";
import { toSendKeyCalls } from "./qcodes.js";
import { convert, createDisk, createOverlay, imageInfo, resize, sliceFilename } from "../../src/artifact/qemu-img.js";
import { exportQcow2 } from "../../src/artifact/qcow2-export.js";

const QEMU_HINT = "apt-get install qemu-system-x86 qemu-utils";

interface Running {
  proc: ResultPromise;
  pid: number;
  exit: Promise<{ code: number | undefined; signal: string | undefined }>;
  qmp?: QmpClient;
  stderr: string[];
  /** We asked it to stop (shutdown/destroy/restart): its exit is not a failure. */
  expectingExit: boolean;
  /** SIGTERM, then SIGKILL after the exec wrapper's grace period. */
  kill: () => void;
}

interface VmState {
  handle: VmHandle;
  dir: string;
  cmdline: QemuCmdline;
  accel: AccelChoice;
  running?: Running;
  fellBackToTcg: boolean;
  /** A line showing KVM cannot run this guest, seen on QEMU's output. */
  kvmCrash?: string | undefined;
  /** Rejects when the VM stops while the build still needs it. */
  unexpectedExit: Promise<string>;
  failUnexpected: (msg: string) => void;
}

export function createQemuDriver(ctx: DriverFactoryContext): Driver {
  const spec = ctx.spec.drivers.qemu;
  if (!spec) throw new UserError("DRIVER_NOT_CONFIGURED", "drivers.qemu: not configured in the template");
  const driver = new QemuDriver(spec, ctx.spec.ssh.port, ctx.events, ctx.journal);
  // Missing or mismatched OVMF is bad input: exit 2 before anything is fetched or booted.
  if (spec.firmware === "efi") driver.efiFirmware();
  return driver;
}

export class QemuDriver implements Driver {
  readonly name = "qemu" as const;
  readonly capabilities = {
    sources: ["cloud-image", "iso"] as Array<"cloud-image" | "iso">,
    keystrokes: true,
    exports: ["qcow2", "raw", "vmdk", "ovf", "ova"] as Array<"qcow2" | "raw" | "vmdk" | "ovf" | "ova">,
    diskSlices: true,
  };
  private readonly vms = new Map<string, VmState>();
  private ovmf: OvmfFirmware | undefined;

  constructor(
    private readonly spec: QemuSpec,
    private readonly guestSshPort: number,
    private readonly events: EventBus,
    private readonly journal: Journal,
  ) {}

  async createVm(vmSpec: VmSpec, signal: AbortSignal): Promise<VmHandle> {
    const existing = this.vms.get(vmSpec.name);
    if (existing) return existing.handle; // idempotent per build id
    const dir = join(vmSpec.buildDir, "qemu");
    await mkdir(dir, { recursive: true });
    const diskPath = join(dir, "disk.qcow2");
    const consoleLog = join(dir, "console.log");

    if (vmSpec.sourceDisk) {
      const given = vmSpec.sourceDisk;
      // A byte range of a file (the VMDK in an OVA) is read through QEMU's raw driver at that
      // offset, named as a json: filename: overlay, copy and info all take it as the base.
      const src = given.slice
        ? { path: sliceFilename(given.path, given.format ?? "vmdk", given.slice), format: given.format ?? "vmdk" }
        : { path: given.path, format: given.format };
      const info = await imageInfo(src.path, signal, src.format);
      const format = src.format ?? info.format; // detected once here, then passed explicitly
      if (vmSpec.diskSize !== undefined && vmSpec.diskSize < info.virtualSize) {
        throw new UserError("DISK_TOO_SMALL", `drivers.qemu.disk_size: ${vmSpec.diskSize} bytes is smaller than the source image's virtual size (${info.virtualSize} bytes)`);
      }
      if (this.spec.diskMode === "overlay") {
        // The overlay leaves the cached source untouched; export reads through the backing chain.
        await createOverlay(src.path, format, diskPath, vmSpec.diskSize, signal);
      } else {
        await convert({ src: src.path, srcFormat: format, dst: diskPath, format: "qcow2", compression: "none" }, this.events, "copy source disk", signal);
        if (vmSpec.diskSize !== undefined) await resize(diskPath, "qcow2", vmSpec.diskSize, signal);
      }
    } else {
      if (vmSpec.diskSize === undefined) throw new UserError("DISK_SIZE_REQUIRED", "drivers.qemu.disk_size: required for an installer ISO build");
      await createDisk(diskPath, vmSpec.diskSize, signal);
    }

    let firmware: QemuCmdline["firmware"] = { kind: "bios" };
    if (vmSpec.firmware === "efi") {
      const fw = this.efiFirmware();
      // Per-VM copy: the guest writes its boot entries there; the system template is never mapped.
      const vars = join(dir, fw.varsFormat === "qcow2" ? "efivars.qcow2" : "efivars.fd");
      await copyVarsTemplate(fw.varsTemplate, vars);
      firmware = { kind: "efi", code: fw.code, codeFormat: fw.codeFormat, vars, varsFormat: fw.varsFormat, secureBoot: fw.secureBoot };
      this.events.info(`UEFI firmware ${fw.code} (${fw.origin})`, "qemu");
    }

    const accel = chooseAccel(this.spec.accelerator, probeAccel());
    if (accel.warning) this.events.warn(accel.warning, "qemu");
    else this.events.info(`accelerator: ${accel.accel}`, "qemu");

    const handle: VmHandle = { id: vmSpec.name, driver: "qemu", diskPath, consoleLog };
    let failUnexpected: (msg: string) => void = () => undefined;
    const unexpectedExit = new Promise<string>((_, reject) => {
      failUnexpected = (msg) => reject(new BuildError("VM_EXITED", msg));
    });
    unexpectedExit.catch(() => undefined); // observed by whoever races it
    this.vms.set(vmSpec.name, {
      handle,
      dir,
      accel,
      fellBackToTcg: false,
      unexpectedExit,
      failUnexpected,
      cmdline: {
        name: vmSpec.name,
        accel: accel.accel,
        machine: this.spec.machine,
        cpus: this.spec.cpus,
        memoryMiB: this.spec.memory,
        disk: { path: diskPath, format: "qcow2" },
        cidataIso: vmSpec.cidataIso,
        installerIso: vmSpec.installerIso,
        installerMedia: vmSpec.installerMedia,
        noReboot: vmSpec.exitOnReboot ?? false,
        qmpSocket: join(dir, "qmp.sock"),
        consoleLog,
        sshHostPort: 0,
        guestSshPort: this.guestSshPort,
        headless: this.spec.headless,
        firmware,
        extraArgs: this.spec.extraArgs,
      },
    });
    return handle;
  }

  /** The OVMF pair for firmware: efi: the template's, else probed (once). Throws UserError (exit 2). */
  efiFirmware(): OvmfFirmware {
    const secureBoot = this.spec.efiSecureBoot ?? false;
    this.ovmf ??= this.spec.efiFirmwareCode !== undefined && this.spec.efiFirmwareVars !== undefined
      ? explicitOvmf(this.spec.efiFirmwareCode, this.spec.efiFirmwareVars, secureBoot)
      : probeOvmf({ machine: this.spec.machine, secureBoot });
    return this.ovmf;
  }

  async start(vm: VmHandle, signal: AbortSignal): Promise<void> {
    const st = this.state(vm);
    for (let attempt = 1; ; attempt++) {
      st.cmdline.sshHostPort = this.spec.sshHostPort ?? (await freePort());
      try {
        await this.launch(st, signal);
        return;
      } catch (err) {
        // With -cpu host, kvm-pvm makes QEMU abort at once ("failed to set MSR 0x10a"): retry under
        // TCG when auto chose KVM, and say so.
        if (st.kvmCrash && st.accel.fallbackToTcgOnCrash && !st.fellBackToTcg) {
          const old = st.running;
          this.fallBackToTcg(st, st.kvmCrash);
          // The aborting QEMU still holds the disk's image lock until it is gone.
          if (old) await this.stopProcess(old, 0);
          continue;
        }
        // Another process can take the port between freePort() and QEMU's bind: pick another.
        const portRace = err instanceof BuildError && /host forwarding|Could not set up/i.test(err.message);
        if (!portRace || this.spec.sshHostPort !== undefined || attempt >= 5) throw err;
      }
    }
  }

  private async launch(st: VmState, signal: AbortSignal): Promise<void> {
    const args = qemuArgs(st.cmdline);
    this.events.debug(`${this.spec.binary} ${args.join(" ")}`, "qemu");
    await rm(st.cmdline.qmpSocket, { force: true });
    const lifetime = new AbortController();
    const proc = spawnTool(this.spec.binary, args, {
      signal: lifetime.signal,
      timeoutMs: 0,
      reject: false,
      installHint: QEMU_HINT,
      detached: true,
      onLine: (stream, line) => {
        running.stderr.push(line);
        if (running.stderr.length > 50) running.stderr.shift();
        this.events.debug(line, `qemu[${stream}]`);
        if (isKvmCrashLine(line)) {
          st.kvmCrash ??= line;
          // Before QMP is up, start() handles it; afterwards the guest died under KVM mid-boot.
          if (running.qmp) void this.onKvmCrash(st, line);
        }
      },
    });
    const pid = proc.pid;
    if (pid === undefined) {
      const r = await proc.catch((e: unknown) => e as { code?: string });
      if ((r as { code?: string }).code === "ENOENT") throw new UserError("TOOL_MISSING", `${this.spec.binary} not found on PATH`, { hint: QEMU_HINT });
      throw new BuildError("QEMU_START", `${this.spec.binary} did not start`);
    }
    const running: Running = {
      proc,
      pid,
      stderr: [],
      expectingExit: false,
      kill: () => lifetime.abort(),
      exit: proc.then(
        (r) => ({ code: r.exitCode, signal: r.signal ?? undefined }),
        (e: { exitCode?: number; signal?: string }) => ({ code: e.exitCode, signal: e.signal }),
      ),
    };
    // The pid exists only now, so the journal entry follows the spawn. If writing it fails, a
    // QEMU that neither gc (no entry) nor undo (launch threw) knows of would outlive the build:
    // stop it here before failing.
    try {
      this.journal.add({ kind: "process", pid, match: st.handle.id });
    } catch (err) {
      await this.stopProcess(running, 0);
      throw err;
    }
    st.running = running;
    void running.exit.then(async (r) => {
      this.journal.done({ kind: "process", pid, match: st.handle.id });
      // Before QMP is up, launch() rejects and start() decides (port race, KVM fallback).
      if (running.expectingExit || st.running !== running || !running.qmp) return;
      const tail = await this.consoleTail(st.handle, 10);
      st.failUnexpected(
        `qemu exited unexpectedly (${r.signal ? `signal ${r.signal}` : `exit code ${r.code}`})` +
          (running.stderr.length ? `: ${running.stderr.slice(-3).join(" | ")}` : "") +
          (tail ? `\nserial console (last lines):\n${tail}` : ""),
      );
    });

    // QMP: the socket shows up a moment after start; a quick exit (bad argv, port in use) shows
    // up as the process ending first.
    // If QEMU exits first, the connect loop must stop too: left polling, it would grab the socket
    // of the next QEMU (a monitor serves one client), and that QEMU would never greet us.
    const connectAbort = new AbortController();
    const qmp = await Promise.race([
      QmpClient.connect(st.cmdline.qmpSocket, AbortSignal.any([signal, connectAbort.signal])),
      running.exit.then((r) => {
        connectAbort.abort();
        throw new BuildError("QEMU_START", `qemu exited at start (code ${r.code}): ${tailLines(running.stderr.join("\n"), 3)}`);
      }),
    ]);
    running.qmp = qmp;
    qmp.on("event", (e) => this.events.debug(`QMP event ${e.event}${e.data ? " " + JSON.stringify(e.data) : ""}`, "qemu"));
    this.events.info(`VM ${st.handle.id} started (pid ${pid}, ${st.cmdline.accel}, ssh on 127.0.0.1:${st.cmdline.sshHostPort})`, "qemu");
  }

  private async onKvmCrash(st: VmState, line: string): Promise<void> {
    if (!st.accel.fallbackToTcgOnCrash || st.fellBackToTcg || !st.running) {
      st.failUnexpected(`the guest crashed under KVM: ${line}. This host's KVM cannot run it; set drivers.qemu.accelerator: tcg`);
      return;
    }
    const old = st.running;
    this.fallBackToTcg(st, line);
    await this.stopProcess(old, 0);
    try {
      await this.launch(st, new AbortController().signal);
    } catch (err) {
      st.failUnexpected(`restart under TCG failed: ${(err as Error).message}`);
    }
  }

  private fallBackToTcg(st: VmState, line: string): void {
    st.fellBackToTcg = true;
    st.kvmCrash = undefined;
    st.cmdline.accel = "tcg";
    if (st.running) st.running.expectingExit = true;
    this.events.warn(`KVM cannot run this guest ("${line.trim()}"): restarting it under TCG. TCG software emulation is several times slower than KVM.`, "qemu");
  }

  async sshEndpoint(vm: VmHandle): Promise<{ host: string; port: number }> {
    const st = this.state(vm);
    if (!st.running) throw new BuildError("VM_NOT_RUNNING", `VM ${vm.id} is not running`);
    return { host: "127.0.0.1", port: st.cmdline.sshHostPort };
  }

  exited(vm: VmHandle): Promise<string> {
    return this.state(vm).unexpectedExit;
  }

  async sendKeys(vm: VmHandle, keys: KeyEvent[], signal: AbortSignal): Promise<void> {
    const qmp = this.qmp(vm);
    for (const call of toSendKeyCalls(keys)) {
      if ("waitMs" in call) await sleep(call.waitMs, signal);
      else await qmp.execute("send-key", call.holdTimeMs === undefined ? { keys: call.keys } : { keys: call.keys, "hold-time": call.holdTimeMs });
    }
  }

  /** User networking: the guest reaches the host's loopback (and every host address) at 10.0.2.2. */
  guestHostAddress(bindAddress: string): string {
    return bindAddress === "0.0.0.0" || bindAddress === "::" || bindAddress.startsWith("127.") || bindAddress === "localhost" ? "10.0.2.2" : bindAddress;
  }

  /** Through 10.0.2.2 the guest's connections arrive from 127.0.0.1 (the installer HTTP server serves only it). */
  guestPeerAddress(guestAddress: string): string | undefined {
    return natGuestPeerAddress(guestAddress);
  }

  async waitForGuestStop(vm: VmHandle, opts: { timeoutMs: number }, signal: AbortSignal): Promise<boolean> {
    const r = this.state(vm).running;
    if (!r) return true;
    // The installer powering off (or rebooting under -no-reboot) ends QEMU: that exit is the event.
    r.expectingExit = true;
    if (!(await this.waitExit(r, opts.timeoutMs, signal))) return false;
    const e = await r.exit;
    if (e.signal || (e.code !== 0 && e.code !== undefined)) {
      throw new BuildError("VM_EXITED", `qemu stopped abnormally during the install (${e.signal ? `signal ${e.signal}` : `exit code ${e.code}`})` +
        (r.stderr.length ? `: ${r.stderr.slice(-3).join(" | ")}` : ""));
    }
    return true;
  }

  async restart(vm: VmHandle, opts: { removeInstallerMedia: boolean }, signal: AbortSignal): Promise<void> {
    const st = this.state(vm);
    if (st.running && !(await this.waitExit(st.running, 0, signal))) throw new BuildError("VM_RUNNING", `cannot restart ${vm.id} while it runs`);
    st.running?.qmp?.close();
    st.running = undefined;
    if (opts.removeInstallerMedia) {
      st.cmdline.installerIso = undefined;
      st.cmdline.installerMedia = undefined;
    }
    st.cmdline.noReboot = false; // the installed system may reboot itself (kernel updates) from now on
    // A fresh "stopped unexpectedly" promise: the install run's exit was expected.
    st.unexpectedExit = new Promise<string>((_, reject) => {
      st.failUnexpected = (msg) => reject(new BuildError("VM_EXITED", msg));
    });
    st.unexpectedExit.catch(() => undefined);
    await this.start(vm, signal);
  }

  async shutdown(vm: VmHandle, opts: { timeoutMs: number; guestInitiated: boolean }, signal: AbortSignal): Promise<void> {
    const r = this.state(vm).running;
    if (!r) return;
    r.expectingExit = true;
    // QEMU exits when the guest powers off: the process exit is the event (no polling).
    const primitives: PowerOffPrimitives = {
      waitOff: (ms, sig) => this.waitExit(r, ms, sig),
      askName: "ACPI power button",
      ask: async () => void (await r.qmp?.execute("system_powerdown")),
      force: () => this.stopProcess(r, 0),
    };
    await escalatePowerOff(primitives, { ...opts, events: this.events, source: "qemu", vmName: vm.id }, signal);
  }

  async exportDisk(vm: VmHandle, to: ExportRequest, signal: AbortSignal): Promise<DiskFile> {
    const st = this.state(vm);
    if (st.running && !(await this.waitExit(st.running, 0, signal))) {
      throw new BuildError("VM_RUNNING", `cannot export the disk of ${vm.id} while it runs`);
    }
    if (to.format === "qcow2") {
      await exportQcow2({ src: st.cmdline.disk.path, dst: to.path, compression: to.compression, events: this.events, signal });
    } else {
      const o = { src: st.cmdline.disk.path, srcFormat: "qcow2", dst: to.path, format: to.format, compression: to.compression, ...(to.subformat ? { subformat: to.subformat } : {}) } as const;
      await convert(o, this.events, `convert to ${to.format}`, signal);
    }
    const info = await imageInfo(to.path, signal, to.format);
    const { size } = await stat(to.path);
    return { path: to.path, format: to.format, size, virtualSize: info.virtualSize };
  }

  async destroyVm(vm: VmHandle): Promise<void> {
    const st = this.vms.get(vm.id);
    if (!st) return;
    if (st.running) {
      st.running.expectingExit = true;
      await this.stopProcess(st.running, 5_000);
    }
    await rm(st.dir, { recursive: true, force: true });
    this.vms.delete(vm.id);
  }

  async consoleTail(vm: VmHandle, lines: number): Promise<string> {
    if (!vm.consoleLog) return "";
    try {
      const text = await readFile(vm.consoleLog, "utf8");
      // Strip ANSI/VT escapes the firmware and kernel print; they garble a terminal.
      return tailLines(text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc/g, "").replace(/\r/g, ""), lines);
    } catch {
      return "";
    }
  }

  /** The QMP connection of a running VM, for other modules (boot commands, tests). */
  qmp(vm: VmHandle): QmpClient {
    const q = this.state(vm).running?.qmp;
    if (!q) throw new BuildError("VM_NOT_RUNNING", `VM ${vm.id} is not running`);
    return q;
  }

  private async waitExit(r: Running, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([r.exit.then(() => true), timeout, aborted]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Graceful QMP quit (flushes the image), then SIGTERM/SIGKILL through the exec wrapper. */
  private async stopProcess(r: Running, graceMs: number): Promise<void> {
    r.expectingExit = true;
    const never = new AbortController().signal;
    if (graceMs > 0 && r.qmp && !r.qmp.isClosed) {
      await r.qmp.execute("quit").catch(() => undefined);
      if (await this.waitExit(r, graceMs, never)) return;
    }
    r.kill();
    await r.exit;
    r.qmp?.close();
  }

  private state(vm: VmHandle): VmState {
    const st = this.vms.get(vm.id);
    if (!st) throw new BuildError("VM_UNKNOWN", `no such VM: ${vm.id}`);
    return st;
  }
}
