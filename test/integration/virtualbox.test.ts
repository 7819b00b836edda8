// Issues 6 and 13: the VirtualBox driver end to end against the VBoxManage TEST DOUBLE
// (test/doubles/VBoxManage, first on PATH), whose machines run on real QEMU and which plays
// VirtualBox 7.0 (the default) or 6.1.
//   1. A cloud-image build with real SSH provisioning → an OVA that passes `vmkiln verify`; the guest
//      fetches a file from the build's HTTP server on the host's loopback through 10.0.2.2, which
//      VirtualBox 7's NAT only allows with --nat-localhostreachable1 on.
//   2. The OVA's disk boots (through the driver, VirtualBox 7.0, no HTTP server so no loopback
//      access): the guest's connection to a loopback-only listener at 10.0.2.2 really fails while
//      the host's own address answers; typed scan codes reach the console; then its QEMU is killed
//      (-9) and the machine is `aborted`, which fails the driver's wait naming VBox.log.
//   3. An abort mid-build leaves no machine in the double's registry and no qemu process.
//   4. The OVA vmkiln's QEMU driver writes is imported by the double playing VirtualBox 6.1 (its OVF
//      reader rules), boots, and there the guest does reach the host's loopback at 10.0.2.2.
//   5. A guest that triple-faults is a Guru Meditation: the driver's wait fails naming the state.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualBoxDriver } from "../../drivers/virtualbox/index.js";
import { parseVmInfo, parseVmList } from "../../drivers/virtualbox/machinereadable.js";
import { scancodesToEvents } from "../../drivers/virtualbox/scancodes.js";
import { parseBootCommand } from "../../src/bootcommand/parse.js";
import { EventBus } from "../../src/log/events.js";
import { writeCidataIso } from "../../src/media/cidata.js";
import type { VmHandle } from "../../src/pipeline/driver.js";
import { Journal } from "../../src/pipeline/journal.js";
import type { VirtualBoxSpec } from "../../src/template/spec.js";
import type { SshKeyPair } from "../../src/pipeline/context.js";
import { generateBuildKey } from "../../src/ssh/keys.js";
import { waitForSsh } from "../../src/ssh/wait.js";
import { sleep } from "../../src/util/abort.js";
import { freePort } from "../../src/util/net.js";
import { REPO, runCli, startCli, type CliResult } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";
import { qemuDriverOva } from "../helpers/qemu-ova.js";
import { itFull } from "../helpers/tier.js";

const DOUBLES = fileURLToPath(new URL("../doubles", import.meta.url));
const VBOXMANAGE = join(DOUBLES, "VBoxManage");
const EXAMPLE = join(REPO, "fixtures/examples/virtualbox-cloud-image.yaml");
// Shifted symbols, an arrow key (an e0-prefixed code) and an edit: "typed.tt" ← "x" → "typed.txt".
const BOOT_COMMAND = "echo 'Typed: Hello, VBox!' | tee /tmp/typed.tt<left>x<enter>";
const V61 = "6.1.50r161033";

/** A guest shell line: connect to host:port, send a GET, print the status line; `rc=` is 124 on a timeout. */
const fetchFromGuest = (host: string, port: number, path = "/") =>
  `timeout 15 bash -c 'exec 3<>/dev/tcp/${host}/${port} && printf "GET ${path} HTTP/1.0\\r\\n\\r\\n" >&3 && head -1 <&3'; echo "rc=$?"`;

/** The same fetch as a provisioning step: fails the step when the connection fails. */
const fetchStep = (host: string, port: number, path: string) =>
  `timeout 15 bash -c 'exec 3<>/dev/tcp/${host}/${port} && printf "GET ${path} HTTP/1.0\r\n\r\n" >&3 && cat <&3'`;

/** An HTTP server answering "hello from <name>" (the host side of the NAT checks). */
async function listen(host: string, name: string): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.socket.remoteAddress} ${req.url}`);
    res.end(`hello from ${name}\n`);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

/** The host's first non-loopback IPv4 address (where VirtualBox's NAT lets the guest through), if any. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

/** A NoCloud seed: user `tester` with the key, and (optionally) root logged in on tty1 for typing. */
async function cidata(path: string, key: SshKeyPair, id: string, autologin = false): Promise<void> {
  await writeCidataIso(path, {
    metaData: stringify({ "instance-id": `${id}-${Date.now()}`, "local-hostname": id }),
    userData:
      "#cloud-config\n" +
      stringify({
        users: [{ name: "tester", shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: [key.publicKey] }],
        ...(autologin
          ? {
              write_files: [{ path: "/etc/systemd/system/getty@tty1.service.d/autologin.conf", content: "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %I $TERM\n" }],
              runcmd: [["systemctl", "daemon-reload"], ["systemctl", "restart", "getty@tty1"]],
            }
          : {}),
      }),
    networkConfig: "",
  });
}

const vboxSpec = (over: Partial<VirtualBoxSpec> = {}): VirtualBoxSpec => ({
  cpus: 2, memory: 1024, diskSize: undefined, firmware: "bios", diskFormat: "vdi", headless: true, guestOsType: "Debian_64",
  graphicsController: "vmsvga", diskController: "virtio", nicType: "virtio", ovfVersion: "1.0", vboxmanage: [], binary: VBOXMANAGE, sshHostPort: undefined,
  ...over,
});

describe("virtualbox on the VBoxManage double: cloud image → OVA", () => {
  let image: string;
  let work: string;
  let out: string;
  let env: Record<string, string>;
  let res: CliResult;
  let loopback: Awaited<ReturnType<typeof listen>>;

  const vbox = (args: string[], extra: Record<string, string> = {}) => execFileSync(VBOXMANAGE, args, { env: { ...process.env, ...env, ...extra }, encoding: "utf8" });
  const registry = (extra: Record<string, string> = {}) => parseVmList(vbox(["list", "vms"], extra));
  const doubleState = () => JSON.parse(readFileSync(env.VBOXMANAGE_DOUBLE_STATE!, "utf8")) as { machines: Array<{ name: string; scancodes: string[][]; qemuPid: number | null }> };

  /** Runs `fn` with process.env pointed at `state` (the driver runs the double as a child process). */
  async function withDoubleEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    const prev = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    try {
      return await fn();
    } finally {
      for (const [k, v] of Object.entries(prev)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  beforeAll(async () => {
    image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-vbox-"));
    out = join(work, "out");
    env = { PATH: `${DOUBLES}:${process.env.PATH ?? ""}`, VBOXMANAGE_DOUBLE_STATE: join(work, "double", "state.json"), VMKILN_FIXTURE_IMAGE: image };
    loopback = await listen("127.0.0.1", "the host's loopback");
    // The example, plus what an installer does over HTTP: the build's server on 127.0.0.1, fetched by the guest at 10.0.2.2.
    const t = parse(readFileSync(EXAMPLE, "utf8")) as Record<string, unknown> & { source: { cloud_image: { path: string } }; provision: unknown[] };
    // Provisioners are not rendered with ${http.port}: the port is fixed here, where it is known free.
    const httpPort = await freePort();
    // path_prefix off: the provisioner names the file by its bare path (the prefix is what ${http.prefix} would give).
    t.http = { bind_address: "127.0.0.1", port: httpPort, path_prefix: false, content: { "/hello.txt": "hello from the build's HTTP server" } };
    t.provision.push({ shell: { name: "fetch from the host's HTTP server", inline: [fetchStep("10.0.2.2", httpPort, "/hello.txt")] } });
    const template = join(work, "virtualbox-http.yaml");
    writeFileSync(template, stringify(t));
    res = await runCli(["build", template, "--json", "-var", `output_dir=${out}`, "-var", "ovf_version=2.0"], env);
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  });

  afterAll(async () => {
    loopback?.server.close();
    // Every VM the double started has its QMP socket under work/double: none may be left.
    const left = work ? qemuProcesses(join(work, "double")) : [];
    if (work) await rm(work, { recursive: true, force: true });
    expect(left).toEqual([]);
  });

  it("builds with real SSH provisioning; the guest fetched from the build's HTTP server through 10.0.2.2 (VirtualBox 7 needs --nat-localhostreachable1)", () => {
    expect(res.code, res.stderr.slice(-2000)).toBe(0);
    const ends = res.events.filter((e) => e.type === "step-end").map((e) => e.step);
    expect(ends).toEqual(["prepare", "fetch source", "ssh key", "serve http", "cidata", "create vm", "start vm", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export"]);
    const logs = res.events.filter((e) => e.type === "log").map((e) => String(e.message));
    expect(logs).toContain("VirtualBox 7.0.20");
    expect(logs).toContain("NAT: the guest may reach the host's loopback at 10.0.2.2 (--nat-localhostreachable1 on, VirtualBox 7)");
    expect(logs.some((l) => /^exported OVF 2\.0: debian-12-vbox\.ovf, debian-12-vbox-disk001\.vmdk$/.test(l))).toBe(true);
    const lines = res.events.filter((e) => e.type === "output").map((e) => String(e.line));
    expect(lines.some((l) => /^HTTP\/1\.[01] 200 OK$/.test(l))).toBe(true); // the build's server answered the guest
    expect(lines).toContain("hello from the build's HTTP server");
    // The provisioner ran in the guest over SSH.
    expect(lines.some((l) => /^machine-id [0-9a-f]{32}$/.test(l))).toBe(true);
    expect(registry()).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "debian-12-vbox.ova", "debian-12-vbox.ova.sha256", "debian-12-vbox.spdx.json", "manifest.json"]);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out });
  });

  describe("the OVA", () => {
    let ex: string;
    beforeAll(() => {
      if (res.code !== 0) return;
      ex = join(work, "ova-x");
      mkdirSync(ex);
      execFileSync("tar", ["-xf", join(out, "debian-12-vbox.ova"), "-C", ex]);
    });

    it("passes vmkiln verify", async () => {
      const r = await runCli(["verify", join(out, "debian-12-vbox.ova"), "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
    });

    it("was rewritten vSphere-safe: OVF first, canonical SHA256 manifest, vmx-NN, file sizes", () => {
      const list = execFileSync("tar", ["-tf", join(out, "debian-12-vbox.ova")], { encoding: "utf8" }).trim().split("\n");
      expect(list).toEqual(["debian-12-vbox.ovf", "debian-12-vbox.mf", "debian-12-vbox-disk001.vmdk"]);
      const mf = readFileSync(join(ex, "debian-12-vbox.mf"), "utf8").trim().split("\n");
      for (const line of mf) {
        const m = /^SHA256\((.+)\)= ([0-9a-f]{64})$/.exec(line);
        expect(m, line).not.toBeNull();
        expect(execFileSync("sha256sum", [join(ex, m![1]!)], { encoding: "utf8" }).split(" ")[0]).toBe(m![2]);
      }
      const ovf = readFileSync(join(ex, "debian-12-vbox.ovf"), "utf8");
      expect(ovf).toContain('ovf:version="2.0"'); // VBoxManage export --ovf20 wrote it
      expect(ovf).toMatch(/<vssd:VirtualSystemType>vmx-\d\d<\/vssd:VirtualSystemType>/);
      expect(ovf).toMatch(/ovf:href="debian-12-vbox-disk001\.vmdk" ovf:size="\d+"/);
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(ex, "debian-12-vbox-disk001.vmdk")], { encoding: "utf8" }));
      expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
      expect(info["virtual-size"]).toBe(4 * 1024 ** 3);
    });

    // Full tier (test/helpers/tier.ts), as the 6.1 import below: the build above already ran a guest on
    // the VirtualBox 7.0 double (NAT to the host's loopback, SSH, export); these boot the exports again.
    itFull("its disk boots on VirtualBox 7.0 without host-loopback access, typed scan codes reach the console, and a killed VM is aborted", async () => {
      const dir = join(work, "boot");
      mkdirSync(dir);
      const events = new EventBus();
      const journal = new Journal(`test-vbox-boot-${Date.now()}`);
      const driver = new VirtualBoxDriver(vboxSpec(), 22, events, journal);
      const signal = new AbortController().signal;
      const open = await listen(hostAddress() ?? "127.0.0.1", "the host's own address");
      let vm: VmHandle | undefined;
      try {
        await withDoubleEnv({ VBOXMANAGE_DOUBLE_STATE: env.VBOXMANAGE_DOUBLE_STATE! }, async () => {
          const key = await generateBuildKey(dir, "vmkiln-test");
          const seed = join(dir, "cidata.iso");
          // A fresh user for SSH, and root logged in on tty1 (the VGA console the keyboard types into).
          await cidata(seed, key, "vboxboot", true);
          vm = await driver.createVm(
            { name: `vmkiln-vboxboot-${Date.now()}`, buildId: "vboxboot", buildDir: dir, sourceDisk: { path: join(ex, "debian-12-vbox-disk001.vmdk"), format: "vmdk" }, installerIso: undefined, cidataIso: seed, diskSize: undefined, firmware: "bios" },
            signal,
          );
          await driver.start(vm, signal);
          const ep = await driver.sshEndpoint(vm);
          const { session } = await waitForSsh({ target: { host: ep.host, port: ep.port, username: "tester", privateKey: key.privateKey }, timeoutMs: 600_000, events, signal });
          const sh = (cmd: string) => session.capture(cmd, { signal, timeoutMs: 120_000 });
          try {
            expect((await sh("cat /etc/vmkiln/greeting")).trim()).toBe("built on VirtualBox");
            expect(await sh("getent passwd builder || true")).toBe(""); // generalized: the build user is gone
            // VirtualBox 7 NAT, localhost-reachable off (a new machine's default): the SYN to 10.0.2.2 is dropped.
            expect((await sh(fetchFromGuest("10.0.2.2", loopback.port))).trim()).toBe("rc=124");
            expect(loopback.hits.filter((h) => !h.endsWith("/hello.txt"))).toEqual([]);
            // ...while the host's own (non-loopback) address is reachable, as VirtualBox 7's NAT allows.
            if (hostAddress()) expect((await sh(fetchFromGuest(hostAddress()!, open.port))).trim().split("\n")).toEqual(["HTTP/1.1 200 OK", "rc=0"]);
            const vboxLog = readFileSync(join(dir, "virtualbox", vm!.id, "Logs", "VBox.log"), "utf8");
            expect(vboxLog).toMatch(/NAT: dropped a guest packet to 10\.0\.2\.2: the host's loopback is not reachable/);
            // Wait for root's shell on tty1, then type.
            for (let i = 0; !(await sh("pgrep -t tty1 -u root -x bash || true")).trim(); i++) {
              if (i > 120) throw new Error("no root shell on tty1 after 6 minutes");
              await sleep(3_000, signal);
            }
            await sleep(3_000, signal);
            await driver.sendKeys!(vm!, parseBootCommand(BOOT_COMMAND), signal);
            let typed = "";
            for (let i = 0; i < 40 && !typed; i++) {
              await sleep(1_500, signal);
              typed = (await sh("cat /tmp/typed.txt 2>/dev/null || true")).trim();
            }
            expect(typed).toBe("Typed: Hello, VBox!");
          } finally {
            await session.close();
          }
          // What the double recorded is exactly what was typed.
          const groups = doubleState().machines.find((m) => m.name === vm!.id)!.scancodes;
          expect(groups.length).toBeGreaterThan(1); // bounded groups, not one long call
          for (const g of groups) expect(g.length).toBeLessThanOrEqual(25);
          expect(scancodesToEvents(groups.flat())).toEqual(parseBootCommand(BOOT_COMMAND));

          // The VM dies under the build (its QEMU killed): VirtualBox records `aborted`, and the driver
          // does not take that for a power-off.
          const before = parseVmInfo(vbox(["showvminfo", vm!.id, "--machinereadable"])).raw.get("VMStateChangeTime");
          const qemu = doubleState().machines.find((m) => m.name === vm!.id)!.qemuPid!;
          expect(qemuProcesses(vm!.id).map((p) => p.pid)).toContain(qemu);
          process.kill(qemu, "SIGKILL");
          const logPath = join(dir, "virtualbox", vm!.id, "Logs", "VBox.log");
          await expect(driver.waitForGuestStop(vm!, { timeoutMs: 30_000 }, signal)).rejects.toMatchObject({
            code: "VBOX_VM_CRASHED",
            message: `VM ${vm!.id} ended in state aborted (its VM process died)`,
            hint: `see ${logPath}`,
          });
          const after = parseVmInfo(vbox(["showvminfo", vm!.id, "--machinereadable"]));
          expect(after.state).toBe("aborted");
          expect(after.raw.get("VMStateChangeTime")! > before!).toBe(true);
          expect(readFileSync(logPath, "utf8")).toMatch(/QEMU ended abnormally \(SIGKILL\): the machine is aborted/);
        });
      } finally {
        open.server.close();
        if (vm) await withDoubleEnv({ VBOXMANAGE_DOUBLE_STATE: env.VBOXMANAGE_DOUBLE_STATE! }, () => driver.destroyVm(vm!));
        journal.close();
      }
      expect(registry()).toEqual([]);
      expect(qemuProcesses("vmkiln-vboxboot-")).toEqual([]);
    });
  });

  it("an abort mid-build leaves no machine registered and no qemu process", async () => {
    const run = startCli(["build", EXAMPLE, "--json", "-var", `output_dir=${join(work, "aborted")}`], env);
    let buildId = "";
    try {
      const first = await run.waitForEvent((e) => e.type === "log" && /^build \S+:/.test(String(e.message)), 120_000);
      buildId = /^build (\S+):/.exec(String(first.message))![1]!;
      await run.waitForEvent((e) => e.type === "step-start" && e.step === "wait for ssh", 300_000);
      expect(registry().map((m) => m.name)).toEqual([`vmkiln-${buildId}`]);
      expect(qemuProcesses(buildId)).toHaveLength(1); // really running when interrupted
    } finally {
      run.child.kill("SIGINT"); // also when a check failed: the build must not outlive the test
    }
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    expect(r.events.some((e) => e.type === "cleanup" && /destroy vm/.test(String(e.what)) && e.ok === true)).toBe(true);
    expect(registry()).toEqual([]);
    expect(qemuProcesses(buildId)).toEqual([]);
  });

  // Fast tier: issue 19's VMDK writer read by the double's import (VirtualBox's OVF reader rules), no
  // boot; the full-tier test below boots what it imported.
  it("VirtualBox 6.1 imports the OVA vmkiln's QEMU driver writes: the imported disk holds the same bytes as the source", async () => {
    const dir = join(work, "import61-fast");
    const v61 = { VBOXMANAGE_DOUBLE_VERSION: V61, VBOXMANAGE_DOUBLE_STATE: join(dir, "double", "state.json") };
    const ova = await qemuDriverOva({ disk: image, dir: join(dir, "qemu"), name: "debian-12-node" });
    const imported = vbox(["import", ova, "--vsys", "0", "--vmname", "imported-fast", "--basefolder", join(dir, "vms")], v61);
    expect(imported.trim().split("\n").pop()).toBe("Successfully imported the appliance.");
    const info = parseVmInfo(vbox(["showvminfo", "imported-fast", "--machinereadable"], v61));
    const disk = info.attachments["SCSI-0-0"]!;
    expect(execFileSync("qemu-img", ["compare", image, disk], { encoding: "utf8" })).toMatch(/Images are identical/);
    vbox(["unregistervm", "imported-fast", "--delete"], v61);
    expect(existsSync(disk)).toBe(false);
  });

  itFull("VirtualBox 6.1 imports the OVA vmkiln's QEMU driver writes; it boots, and there the guest reaches the host's loopback at 10.0.2.2", async () => {
    const dir = join(work, "import61");
    const v61 = { VBOXMANAGE_DOUBLE_VERSION: V61, VBOXMANAGE_DOUBLE_STATE: join(dir, "double", "state.json") };
    const ova = await qemuDriverOva({ disk: image, dir: join(dir, "qemu"), name: "debian-12-node" });
    const imported = vbox(["import", ova, "--vsys", "0", "--vmname", "imported", "--basefolder", join(dir, "vms")], v61);
    expect(imported).toContain(" 8: SCSI controller, type LsiLogic\n");
    expect(imported.trim().split("\n").pop()).toBe("Successfully imported the appliance.");
    const info = parseVmInfo(vbox(["showvminfo", "imported", "--machinereadable"], v61));
    expect(info).toMatchObject({ cpus: 2, memoryMiB: 1024, controllers: [{ name: "SCSI", type: "LsiLogic" }] });
    const disk = info.attachments["SCSI-0-0"]!;
    expect(existsSync(disk)).toBe(true);
    // What a user does next for this guest, whose cloud kernel has neither the LSI Logic driver nor
    // e1000: the disk on VirtioSCSI, a virtio NIC on NAT (the OVF's "VM Network" imported as Bridged),
    // an SSH rule, and a NoCloud seed on IDE.
    const key = await generateBuildKey(dir, "vmkiln-test");
    const seed = join(dir, "cidata.iso");
    await cidata(seed, key, "imported");
    const sshPort = await freePort();
    for (const args of [
      ["storagectl", "imported", "--name", "SCSI", "--remove"],
      ["storagectl", "imported", "--name", "VirtioSCSI", "--add", "virtio-scsi", "--portcount", "1"],
      ["storageattach", "imported", "--storagectl", "VirtioSCSI", "--port", "0", "--device", "0", "--type", "hdd", "--medium", disk],
      ["storagectl", "imported", "--name", "IDE", "--add", "ide"],
      ["storageattach", "imported", "--storagectl", "IDE", "--port", "1", "--device", "0", "--type", "dvddrive", "--medium", seed],
      ["modifyvm", "imported", "--nic1", "nat", "--nictype1", "virtio", "--natpf1", `ssh,tcp,127.0.0.1,${sshPort},,22`, "--boot1", "disk"],
    ]) vbox(args, v61);
    const events = new EventBus();
    const signal = new AbortController().signal;
    try {
      expect(vbox(["startvm", "imported", "--type", "headless"], v61)).toContain('VM "imported" has been successfully started.');
      const { session } = await waitForSsh({ target: { host: "127.0.0.1", port: sshPort, username: "tester", privateKey: key.privateKey }, timeoutMs: 600_000, events, signal });
      try {
        expect(await session.capture(". /etc/os-release && echo $ID $VERSION_ID", { signal, timeoutMs: 60_000 })).toBe("debian 12");
        const got = (await session.capture(fetchFromGuest("10.0.2.2", loopback.port, "/from-6.1"), { signal, timeoutMs: 60_000 })).trim().split("\n");
        expect(got).toEqual(["HTTP/1.1 200 OK", "rc=0"]);
        expect(loopback.hits).toContain("127.0.0.1 /from-6.1"); // it arrived on the host's loopback
      } finally {
        await session.close();
      }
    } finally {
      vbox(["controlvm", "imported", "poweroff"], v61);
      for (let i = 0; i < 20; i++) {
        try {
          vbox(["unregistervm", "imported", "--delete"], v61);
          break;
        } catch {
          await sleep(500, signal); // the session lock after the VM process ends
        }
      }
    }
    expect(registry(v61)).toEqual([]);
  });

  it("a guest that triple-faults is a Guru Meditation: the install wait fails naming the state, and cleanup powers it off", async () => {
    const dir = join(work, "guru");
    mkdirSync(dir);
    // A boot sector that loads an empty interrupt table and raises int3: #GP, #DF, triple fault.
    const sector = Buffer.alloc(512);
    Buffer.from([0xfa, 0x0f, 0x01, 0x1e, 0x10, 0x7c, 0xcc, 0xeb, 0xfe]).copy(sector, 0); // cli; lidt [0x7c10]; int3; jmp $
    sector[510] = 0x55;
    sector[511] = 0xaa;
    const raw = join(dir, "triple-fault.img");
    writeFileSync(raw, Buffer.concat([sector, Buffer.alloc(1024 * 1024 - 512)]));
    const events = new EventBus();
    const journal = new Journal(`test-vbox-guru-${Date.now()}`);
    const driver = new VirtualBoxDriver(vboxSpec({ diskController: "sata", nicType: "82540EM", memory: 64, cpus: 1 }), 22, events, journal);
    const signal = new AbortController().signal;
    let vm: VmHandle | undefined;
    await withDoubleEnv({ VBOXMANAGE_DOUBLE_STATE: env.VBOXMANAGE_DOUBLE_STATE! }, async () => {
      try {
        vm = await driver.createVm({ name: `vmkiln-guru-${Date.now()}`, buildId: "guru", buildDir: dir, sourceDisk: { path: raw, format: "raw" }, installerIso: undefined, cidataIso: undefined, diskSize: undefined, firmware: "bios" }, signal);
        await driver.start(vm, signal);
        await expect(driver.waitForGuestStop(vm, { timeoutMs: 120_000 }, signal)).rejects.toMatchObject({
          code: "VBOX_VM_CRASHED",
          message: `VM ${vm.id} ended in state gurumeditation (the VM hit a Guru Meditation)`,
        });
        expect(parseVmInfo(vbox(["showvminfo", vm.id, "--machinereadable"])).state).toBe("gurumeditation");
        expect(readFileSync(join(dir, "virtualbox", vm.id, "Logs", "VBox.log"), "utf8")).toContain("Guru Meditation: the guest CPU triple-faulted");
      } finally {
        if (vm) await driver.destroyVm(vm);
        journal.close();
      }
    });
    expect(registry()).toEqual([]);
    expect(qemuProcesses("vmkiln-guru-")).toEqual([]);
  });
});
