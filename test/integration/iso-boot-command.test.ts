// The fast ISO-install proof (issue 4): a real Debian installer boots from an ISO under QEMU, the
// build types its boot command over QMP, and the installer fetches its preseed from our HTTP
// server. Then SIGINT stops the build and nothing is left behind. The full install is test/slow/.
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCli } from "../helpers/cli.js";
import { ensureNetbootIso, sha256Of } from "../helpers/netboot-iso.js";
import { qemuProcesses } from "../helpers/processes.js";
import { describeFull } from "../helpers/tier.js";

// Full tier (test/helpers/tier.ts): a real installer boots from a netboot ISO; the boot command's
// keystrokes and the HTTP server under its path prefix are checked in the fast tier by the vSphere
// ISO build (keystrokes decoded from what vcsim recorded) and the unit tier's encoders.
describeFull("ISO install: boot command and HTTP server on a real installer", () => {
  let work: string;
  let template: string;
  beforeAll(async () => {
    const iso = ensureNetbootIso();
    work = await mkdtemp(join(tmpdir(), "vmkiln-iso-"));
    template = join(work, "netboot.yaml");
    await writeFile(
      template,
      stringify({
        name: "d12-boot-command",
        source: { iso: { path: iso, checksum: `sha256:${sha256Of(iso)}` } },
        drivers: { qemu: { accelerator: "auto", cpus: 2, memory: 1024, disk_size: "2G" } },
        // isolinux waits at `boot:` for ever, so the wait only has to cover SeaBIOS.
        boot: { wait: "15s", command: ["install auto=true priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"] },
        http: { content: { "/preseed.cfg": "# served to ${name} by ${http.url}\nd-i debian-installer/locale string en_US.UTF-8\n" } },
        ssh: { username: "root", password: "unused-in-this-test" },
        output: { directory: join(work, "out") },
      }),
    );
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
    expect(qemuProcesses("d12-boot-command")).toEqual([]);
  });

  it("types the boot command and the installer fetches its preseed; SIGINT leaves nothing", async () => {
    const run = startCli(["build", template, "--json"]);
    try {
      const first = await run.waitForEvent((e) => e.type === "log" && /^build \S+:/.test(String(e.message)), 60_000);
      const [, buildId, buildDir] = /^build (\S+): .*\(build dir (.+)\)$/.exec(String(first.message)) ?? [];
      const serving = await run.waitForEvent((e) => e.type === "log" && e.source === "http" && /^serving /.test(String(e.message)), 60_000);
      // The path prefix is a secret while the build runs (***): the boot command below builds its
      // URL the Packer way, and the prefix goes in after the port; only QEMU's NAT (127.0.0.1) is served.
      expect(String(serving.message)).toMatch(/^serving \/preseed\.cfg on 127\.0\.0\.1:\d+ \(the guest uses http:\/\/10\.0\.2\.2:\d+\/\*\*\*; only 127\.0\.0\.1 is served, under a random path prefix\)$/);
      await run.waitForEvent((e) => e.type === "step-end" && e.step === "boot command" && e.ok === true, 180_000);
      // Under TCG the installer needs 1-3 min (kernel, initrd, DHCP) before it asks for the preseed.
      const got = await run.waitForEvent((e) => e.type === "log" && e.source === "http" && /^GET \/preseed\.cfg/.test(String(e.message)), 480_000);
      expect(String(got.message)).toMatch(/^GET \/preseed\.cfg → 200 \(\d+ bytes\) from 127\.0\.0\.1$/);
      expect(qemuProcesses(buildId!)).toHaveLength(1);

      run.child.kill("SIGINT");
      const r = await run.done;
      expect(r.code, r.stderr.slice(-2000)).toBe(130);
      expect(qemuProcesses(buildId!)).toEqual([]);
      expect(existsSync(buildDir!)).toBe(false);
      expect(existsSync(join(work, "out"))).toBe(false);
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`vmkiln-${buildId}`))).toEqual([]);
      const cleanups = r.events.filter((e) => e.type === "cleanup").map((e) => `${String(e.what)} ${String(e.ok)}`);
      expect(cleanups).toEqual(expect.arrayContaining([expect.stringMatching(/^destroy vm .* true$/), expect.stringMatching(/^stop http server .* true$/)]));
    } finally {
      // On a failed assertion, still let vmkiln undo the build (a SIGKILL would leave QEMU running).
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill("SIGINT");
        const t = setTimeout(() => run.child.kill("SIGKILL"), 120_000);
        await run.done;
        clearTimeout(t);
      }
    }
  });
});
