// Issue 17 acceptance on vcsim: the vSphere chain of fixtures/examples/vsphere-iso-clone-ova.yaml
// (ISO install → base kept as a template → clone → OVA), run through the built CLI. Only the
// connection, the ISO and the timings are changed for the test; the stages, the kickstart and the
// boot command are the example's.
//
// CPU-light on purpose (no VM boots; another test measures VM timings): vcsim runs no guest, so the
// test plays it. It plays the installer as vsphere.test.ts does (decodes the keys vcsim recorded,
// fetches the kickstart URL they name, which the build waits for with http.expect), gives each VM
// the guest IP VMware Tools would report (SET.guest.ipAddress), and answers SSH with a stand-in
// sshd (ssh2's Server on loopback) that records every command and its stdin and exits 0. So what is
// real here is vSphere's side (vcsim + the strict shim: create, power, keystrokes, MarkAsTemplate,
// CloneVM_Task from the template, the export lease and NFC download) and vmkiln's whole build; what
// the guest would have done is recorded, not done. vsphere.test.ts runs provisioning on a real guest.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { VimSession } from "../../drivers/vsphere/session.js";
import { MoRef, refOf } from "../../drivers/vsphere/soap.js";
import { usbKeyEventsToEvents } from "../../drivers/vsphere/usb-hid.js";
import { extraConfigSpec } from "../../drivers/vsphere/vm-config.js";
import { eventsToText } from "../../src/bootcommand/text.js";
import { REPO, runCli, startCli, stopCli, type CliResult, type CliRun } from "../helpers/cli.js";
import { startVcsim, type Vcsim } from "../helpers/vcsim.js";
import { generateEd25519 } from "../../src/ssh/keys.js";

const EXAMPLE = join(REPO, "fixtures/examples/vsphere-iso-clone-ova.yaml");
const signal = new AbortController().signal;

const RPM_LISTING = [
  "@@vmkiln-sbom rpm",
  "open-vm-tools\t0:12.3.5-2.el9\tx86_64\tRocky Enterprise Software Foundation\tGPL-2.0-or-later",
  "openssh-server\t0:8.7p1-38.el9\tx86_64\tRocky Enterprise Software Foundation\tBSD-3-Clause",
  "@@vmkiln-sbom os-release",
  'ID="rocky"',
  'VERSION_ID="9.4"',
  'PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"',
  "",
].join("\n");

interface Exec {
  command: string;
  stdin: string;
}

/** The guest's sshd, played: any key is accepted, every command recorded (with its stdin) and exits 0. */
async function startStandInSshd(): Promise<{ port: number; execs: Exec[]; close(): Promise<void> }> {
  const hostKey = generateEd25519();
  const execs: Exec[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
    client.on("ready", () =>
      client.on("session", (accept) => {
        const session = accept();
        session.on("exec", (acc, _rej, info) => {
          const ch = acc();
          const rec: Exec = { command: info.command, stdin: "" };
          execs.push(rec);
          ch.on("data", (d: Buffer) => (rec.stdin += d.toString()));
          // Commands that read stdin wait for its end; the others get none. The SBOM's package
          // listing is answered as an EL 9 guest's rpm would (src/sbom/inventory.ts).
          const finish = () => {
            if (info.command.includes("@@vmkiln-sbom")) ch.write(RPM_LISTING);
            ch.exit(0);
            ch.end();
          };
          if (/\bcat > /.test(info.command)) ch.once("end", finish);
          else finish();
        });
      }),
    );
    client.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as { port: number }).port, execs, close: () => new Promise((r) => server.close(() => r())) };
}

// Its one flake (a first build whose SSH login failed until the hook's 240 s ran out) was the
// build's own key: ssh2 made a 31-byte ed25519 public key about once in 256 (src/ssh/keys.ts).
describe("vSphere layered chain on vcsim: iso → template → clone → OVA", () => {
  let vc: Vcsim;
  let s: VimSession;
  let sshd: Awaited<ReturnType<typeof startStandInSshd>>;
  let work: string;
  let env: Record<string, string>;
  let running: CliRun | undefined;
  const runs: Record<string, { res: CliResult; created: Array<{ path: string; ref: string }>; kickstart?: string }> = {};

  const logged = (r: CliResult, re: RegExp) => r.events.filter((e) => e.type === "log" && re.test(String(e.message))).map((e) => String(e.message));
  const stages = (r: CliResult) => logged(r, /^stage \S+: (cache hit|built) /).map((m) => m.replace(/ \(key.*$/, ""));
  const steps = (r: CliResult) => r.events.filter((e) => e.type === "step-end").map((e) => String(e.step));
  const files = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((n) => [n, createHash("sha256").update(readFileSync(join(dir, n))).digest("hex")]));

  /** The example, pointed at vcsim, the stand-in sshd, a small ISO and short waits. */
  function template(file: string, out: string, appliance: (stage: { provision: Array<{ shell: { inline: string[] } }> }) => void = () => undefined, vsphere: Record<string, unknown> = {}): string {
    const doc = parse(readFileSync(EXAMPLE, "utf8")) as Record<string, any>;
    doc.source = { iso: { path: join(work, "installer.iso"), checksum: "none" } };
    doc.variables.output_dir = join(work, out);
    Object.assign(doc.drivers.vsphere, { url: vc.url, cluster: "DC0_C0", datastore: "LocalDS_0", network: "VM Network", ca_file: vc.caFile, disk_size: "64M", ssh_port: sshd.port, ip_wait_timeout: "1m", ...vsphere });
    doc.http.content["/ks.cfg"].file = join(REPO, "fixtures/kickstart", "el9-vsphere.ks");
    doc.boot = { ...doc.boot, wait: "0s", key_interval: "1ms" };
    doc.shutdown = { timeout: "1s" };
    doc.ssh = { ...doc.ssh, timeout: "90s" };
    appliance(doc.stages[1]);
    writeFileSync(file, stringify(doc));
    return file;
  }

  /**
   * One build, played: every VM the build creates gets its guest IP; the installer's kickstart is
   * fetched from the URL typed into the ISO VM (http.expect waits for it).
   */
  async function build(name: string, file: string, iso: boolean): Promise<void> {
    const created: Array<{ path: string; ref: string }> = [];
    let kickstart: string | undefined;
    const run = startCli(["build", file, "--json"], env);
    running = run;
    const play = (async () => {
      const seen = new Set<string>();
      for (;;) {
        const e = await run.waitForEvent((ev) => ev.type === "log" && /^created VM \S+ \(vm-\d+\)$/.test(String(ev.message)) && !seen.has(String(ev.message)), 120_000).catch(() => undefined);
        if (!e) return;
        seen.add(String(e.message));
        const m = /^created VM (\S+) \((vm-\d+)\)$/.exec(String(e.message))!;
        created.push({ path: m[1]!, ref: m[2]! });
        const ref = new MoRef("VirtualMachine", m[2]!);
        await s.task("ReconfigVM_Task", ref, [["spec", extraConfigSpec({ "SET.guest.ipAddress": "127.0.0.1", "SET.guest.toolsRunningStatus": "guestToolsRunning" })]], signal);
        if (iso && created.length === 1) {
          await run.waitForEvent((ev) => ev.type === "step-end" && ev.step === "boot command", 120_000);
          const typed = eventsToText(usbKeyEventsToEvents(await vc.scancodes(m[2]!)));
          const url = /inst\.ks=([^\s<]+)/.exec(typed)?.[1] ?? ""; // the line ends with <enter>
          const r = await fetch(url);
          kickstart = await r.text();
        }
      }
    })();
    const res = await run.done;
    running = undefined;
    await play;
    if (res.code !== 0) console.error(`${name}:`, res.stderr.slice(-3000), res.stdout.split("\n").slice(-40).join("\n"));
    runs[name] = { res, created, ...(kickstart !== undefined ? { kickstart } : {}) };
  }

  async function vmNames(): Promise<string[]> {
    const folder = (await s.findByInventoryPath("/DC0/vm", signal))!;
    const out = [];
    for (const e of (await s.prop(folder, "childEntity", signal))?.children ?? []) out.push((await s.prop(refOf(e)!, "name", signal))?.text ?? "");
    return out.filter((n) => n.startsWith("vmkiln-")).sort();
  }

  const entries = () => {
    const dir = join(work, "cache", "stages");
    return existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => /^[0-9a-f]{64}$/.test(n))
          .map((n) => JSON.parse(readFileSync(join(dir, n, "entry.json"), "utf8")) as { key: string; stage: string; kept?: { location: string; identity: Record<string, string> }; parent?: string })
      : [];
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "vmkiln-vs-chain-"));
    vc = await startVcsim();
    s = await VimSession.login({ url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, signal);
    sshd = await startStandInSshd();
    mkdirSync(join(work, "media"));
    writeFileSync(join(work, "media", "README.txt"), "installer stand-in\n");
    execFileSync("genisoimage", ["-quiet", "-o", join(work, "installer.iso"), "-V", "INSTALLER", join(work, "media", "README.txt")]);
    env = { VSPHERE_USERNAME: vc.username, VSPHERE_PASSWORD: vc.password, VMKILN_STATE_DIR: join(work, "state"), VMKILN_CACHE_DIR: join(work, "cache") };

    const t = template(join(work, "chain.yaml"), "out1");
    await build("first", t, true);
    await build("unchanged", template(join(work, "chain.yaml"), "out2"), false);
    const changed = template(join(work, "chain.yaml"), "out3", (st) => st.provision[0]!.shell.inline.push("echo v2 >> /opt/appliance/README"));
    await build("lastStage", changed, false);
  }, Number(process.env.VS_CHAIN_HOOK_MS ?? 240_000));

  afterAll(async () => {
    await stopCli(running);
    await sshd?.close();
    await s?.logout();
    await vc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("first build: the base from the ISO, kept as a template; the appliance a clone of it, exported as an OVA", async () => {
    const { res, created, kickstart } = runs.first!;
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    expect(stages(res)).toEqual(["stage base: built", "stage appliance: built"]);
    // Two builds: the ISO install ending in the template, then the clone ending in the export.
    expect(steps(res)).toEqual([
      "prepare", "fetch source", "ssh key", "serve http", "create vm", "power on", "boot command", "wait for http fetch", "wait for ssh", "provision", "generalize", "shutdown", "keep vm (template)",
      "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export",
    ]);
    // The example's kickstart reboots into the installed system and installs open-vm-tools.
    expect(kickstart).toMatch(/^reboot --eject$/m);
    expect(kickstart).toMatch(/^open-vm-tools$/m);
    expect(kickstart).toMatch(/^sshkey --username=builder "ssh-ed25519 /m);
    // The base VM is a template in the inventory, recorded in its cache entry with its identity.
    expect(created).toHaveLength(2);
    const [base, clone] = created;
    const base_ = entries().find((e) => e.stage === "base")!;
    expect(base_.kept).toMatchObject({ location: base!.path, identity: { moref: base!.ref } });
    const props = await s.props(new MoRef("VirtualMachine", base!.ref), ["config.template", "config.instanceUuid"], signal);
    expect(props.get("config.template")?.text).toBe("true");
    expect(base_.kept!.identity.instanceUuid).toBe(props.get("config.instanceUuid")?.text);
    expect(base_.kept!.identity.instanceUuid).toMatch(/^[0-9a-f-]{36}$/);
    // The appliance was cloned from that template (full clone), and its VM is gone after the export.
    expect(logged(res, /^cloning /)).toEqual([`cloning ${base!.path} (${base!.ref})`]);
    expect(await vmNames()).toEqual([base!.path.split("/").pop()]);
    expect(clone!.path).not.toBe(base!.path);
    expect(logged(res, /kept .* for the next stage/)).toEqual([`stage base: kept ${base!.path} for the next stage`]);
    // Each stage's provisioning reached "the guest" once.
    const ran = sshd.execs.map((x) => x.stdin).join("\n");
    expect(ran).toContain("dnf -y update");
    expect(ran).toContain("install -d -m 0755 /opt/appliance");
    expect(readdirSync(join(work, "out1")).sort()).toEqual(["SHA256SUMS", "manifest.json", "rocky-9-appliance.ova", "rocky-9-appliance.ova.sha256", "rocky-9-appliance.spdx.json"]);
    const v = await runCli(["verify", join(work, "out1", "rocky-9-appliance.ova"), "--json"]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(readdirSync(join(work, "state", "journal"))).toEqual([]);
    expect(res.stdout + res.stderr).not.toContain(vc.password);
  });

  it("unchanged rebuild: both stages hit (the template checked, still there), no VM created, the same bytes", () => {
    const { res, created } = runs.unchanged!;
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    expect(stages(res)).toEqual(["stage base: cache hit", "stage appliance: cache hit"]);
    expect(created).toEqual([]);
    expect(steps(res)).toEqual([]);
    expect(files(join(work, "out2"))).toEqual(files(join(work, "out1")));
  });

  it("last-stage change: the base template is reused (no new base VM), only the clone is built", async () => {
    const { res, created } = runs.lastStage!;
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    expect(stages(res)).toEqual(["stage base: cache hit", "stage appliance: built"]);
    const base = runs.first!.created[0]!;
    expect(created).toHaveLength(1);
    expect(logged(res, /^cloning /)).toEqual([`cloning ${base.path} (${base.ref})`]);
    expect(steps(res)).not.toContain("boot command");
    expect(await vmNames()).toEqual([base.path.split("/").pop()]);
    expect(files(join(work, "out3"))["rocky-9-appliance.ova"]).toBeDefined();
  });

  it("a base template that is gone is not trusted: the base is built again, its entry replaced", async () => {
    const base = runs.first!.created[0]!;
    await s.task("Destroy_Task", new MoRef("VirtualMachine", base.ref), [], signal);
    await build("gone", template(join(work, "chain.yaml"), "out4"), true);
    const { res, created } = runs.gone!;
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    expect(logged(res, /cache entry .* not used/)).toEqual([expect.stringMatching(new RegExp(`^stage base: cache entry [0-9a-f]{16}… not used: the template ${base.path} is gone$`))]);
    expect(stages(res)).toEqual(["stage base: built", "stage appliance: built"]);
    expect(created).toHaveLength(2);
    const kept = entries().filter((e) => e.stage === "base");
    expect(kept.map((e) => e.kept!.location)).toEqual([created[0]!.path]);
    expect(await vmNames()).toEqual([created[0]!.path.split("/").pop()]);
  }, 120_000);

  it("stage_clone: linked — the base template gets a snapshot and the appliance is a linked clone of it", async () => {
    await build("linked", template(join(work, "chain.yaml"), "out5", undefined, { stage_clone: "linked" }), true);
    const { res, created } = runs.linked!;
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    // stage_clone is in the base's key (the base is kept differently): a new base, then a linked clone.
    expect(stages(res)).toEqual(["stage base: built", "stage appliance: built"]);
    const [base] = created;
    expect(logged(res, /^cloning /)).toEqual([`cloning ${base!.path} (${base!.ref}) as a linked clone`]);
    const props = await s.props(new MoRef("VirtualMachine", base!.ref), ["config.template", "snapshot.currentSnapshot"], signal);
    expect(props.get("config.template")?.text).toBe("true");
    expect(refOf(props.get("snapshot.currentSnapshot"))?.type).toBe("VirtualMachineSnapshot");
    expect(readdirSync(join(work, "out5"))).toContain("rocky-9-appliance.ova");
  }, 120_000);
});
