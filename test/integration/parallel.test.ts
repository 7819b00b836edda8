// Issue 19 item 2: two builds at once on the fixture guest (`vmkiln build a.yaml b.yaml --parallel 2`):
// each with its own VM, port, build dir and journal, both artifacts boot; and Ctrl-C during two
// builds undoes both (exit 130, nothing left). Each build is minimal (1 vCPU, no provisioning, no
// generalize) so the pair fits this 2-core TCG machine.
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootImage } from "../helpers/boot.js";
import { startCli } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses, qemuSnapshot } from "../helpers/processes.js";
import { itFull } from "../helpers/tier.js";

function template(name: string, output: string): Record<string, unknown> {
  return {
    name,
    source: { cloud_image: { path: "${env.VMKILN_FIXTURE_IMAGE}", checksum: "none", format: "qcow2" } },
    drivers: { qemu: { cpus: 1, memory: 768 } },
    ssh: { username: "builder", timeout: "15m" },
    provision: [{ shell: { inline: [`echo ${name}-provisioned`, "sleep 2"] } }],
    generalize: { cloud_init: false, machine_id: false, ssh_host_keys: false, build_user: false, logs: false, trim: false },
    output: { directory: output, formats: ["qcow2"], compression: "zlib" },
  };
}

describe("two builds at once", () => {
  let image: string;
  let work: string;
  const vms = qemuSnapshot();
  beforeAll(async () => {
    image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-par-"));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  function templates(label: string): { files: string[]; outs: string[] } {
    const dir = join(work, label);
    const outs = [join(dir, "out-a"), join(dir, "out-b")];
    const files = ["par-a", "par-b"].map((name, i) => {
      const f = join(work, `${label}-${name}.yaml`);
      writeFileSync(f, stringify(template(name, outs[i]!)));
      return f;
    });
    return { files, outs };
  }

  it("Ctrl-C while both VMs run: both undo, exit 130, nothing left", async () => {
    const { files, outs } = templates("sigint");
    const run = startCli(["build", ...files, "--parallel", "2", "--json"], { VMKILN_FIXTURE_IMAGE: image });
    const ids = new Map<string, { id: string; dir: string }>();
    for (const name of ["par-a", "par-b"]) {
      const e = await run.waitForEvent((x) => x.build === name && x.type === "log" && /^build \S+:/.test(String(x.message)), 60_000);
      const m = /^build (\S+): .*\(build dir (.+)\)$/.exec(String(e.message))!;
      ids.set(name, { id: m[1]!, dir: m[2]! });
    }
    for (const name of ["par-a", "par-b"]) await run.waitForEvent((x) => x.build === name && x.type === "step-start" && x.step === "wait for ssh", 120_000);
    for (const { id } of ids.values()) expect(qemuProcesses(id)).toHaveLength(1);
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    for (const { id, dir } of ids.values()) {
      expect(qemuProcesses(id)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
      expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`vmkiln-${id}`))).toEqual([]);
    }
    for (const o of outs) expect(existsSync(o)).toBe(false);
    for (const name of ["par-a", "par-b"]) {
      expect(r.events.some((e) => e.build === name && e.type === "cleanup" && /destroy vm/.test(String(e.what)) && e.ok === true), name).toBe(true);
    }
  });

  // Full tier (test/helpers/tier.ts): two whole builds and two boots; the Ctrl-C test above runs two
  // builds at once in the fast tier.
  itFull("both finish with their own port, build dir and artifact, and both artifacts boot", async () => {
    const { files, outs } = templates("ok");
    const run = startCli(["build", ...files, "--parallel", "2", "--json"], { VMKILN_FIXTURE_IMAGE: image });
    const r = await run.done;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const ports = new Set<string>();
    const dirs = new Set<string>();
    for (const name of ["par-a", "par-b"]) {
      const mine = r.events.filter((e) => e.build === name);
      expect(mine.find((e) => e.type === "build-end")).toMatchObject({ ok: true });
      expect(mine.some((e) => e.type === "output" && e.line === `${name}-provisioned`)).toBe(true);
      const started = mine.find((e) => e.type === "log" && /ssh on 127\.0\.0\.1:\d+/.test(String(e.message)));
      ports.add(/127\.0\.0\.1:(\d+)/.exec(String(started?.message))![1]!);
      const first = mine.find((e) => e.type === "log" && /^build \S+:/.test(String(e.message)));
      dirs.add(/\(build dir (.+)\)$/.exec(String(first?.message))![1]!);
    }
    expect(ports.size).toBe(2);
    expect(dirs.size).toBe(2);
    // They really overlapped: b started before a finished.
    const t = (name: string, type: string) => Date.parse(String(r.events.find((e) => e.build === name && e.type === type)?.time));
    const startB = Date.parse(String(r.events.find((e) => e.build === "par-b" && e.type === "step-start")?.time));
    expect(startB).toBeLessThan(t("par-a", "build-end"));
    // Both boot at once, as they were built (one guest after the other would add ~35 s to the tier).
    // allSettled: a failing boot must not end the test while the other guest still runs.
    const boots = await Promise.allSettled(
      outs.map(async (o, i) => {
        const img = join(o, `par-${"ab"[i]}.qcow2`);
        expect(existsSync(img)).toBe(true);
        const vm = await bootImage(img, { username: "tester" });
        try {
          expect((await vm.sh("echo booted")).trim()).toBe("booted");
        } finally {
          await vm.stop();
        }
      }),
    );
    for (const b of boots) if (b.status === "rejected") throw b.reason;
  });
});
