// Evaluating gossfiles against probe facts (no guest: a fake probe runner answers with facts), and
// the goss-binary path with a fake `goss` that prints goss's documented JSON output (goss cannot be
// installed here; outputs/json.go gives the shape). Messages are the ones `vmkiln test` prints.
import { chmodSync, readdirSync, writeFileSync } from "node:fs";
import { readFile, copyFile } from "node:fs/promises";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resultLine } from "../../../src/check/results.js";
import { loadGossfile } from "../../../src/goss/load.js";
import { parseGossJson, runGossBinary } from "../../../src/goss/binary.js";
import { PROBE_SCRIPT } from "../../../src/goss/probe-script.js";
import { validateGossfile, type Facts, type ProbeRequest } from "../../../src/goss/validate.js";
import { EventBus } from "../../../src/log/events.js";
import type { Communicator } from "../../../src/ssh/communicator.js";
import { tempDir } from "../../helpers/tmp.js";

const tmp = tempDir("vmkiln-goss-validate-");
const gossfile = (text: string) => {
  const p = join(tmp, `g-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return loadGossfile(p, { Vars: {}, Env: {} });
};
const fake = (answer: (r: ProbeRequest) => Facts) => async (reqs: ProbeRequest[]) => reqs.map(answer);
const opts = (probe: ReturnType<typeof fake>) => ({ suite: "s", probe, signal: new AbortController().signal, retryTimeoutMs: 0, sleepMs: 10 });

describe("validate against facts", () => {
  it("a passing and a failing property, with goss's skip rule after a false gate", async () => {
    const g = gossfile(`
file:
  /etc/x:
    exists: true
    mode: "0644"
  /nope:
    exists: true
    mode: "0644"
port:
  tcp:80:
    listening: true
    ip: [0.0.0.0]
`);
    const facts: Record<string, Facts> = {
      "/etc/x": { exists: true, mode: "0600" },
      "/nope": { exists: false },
      "tcp:80": { listening: false, ip: [] },
    };
    const rs = await validateGossfile(g, opts(fake((r) => facts[(r.args.path ?? r.args.port) as string]!)));
    expect(rs.map(resultLine)).toEqual([
      "File: /etc/x: exists: ok: true",
      'File: /etc/x: mode: expected to equal "0644", found "0600"',
      "File: /nope: exists: expected to equal true, found false",
      "File: /nope: mode: skipped (exists is false)",
      "Port: tcp:80: listening: expected to equal true, found false",
      "Port: tcp:80: ip: skipped (listening is false)",
    ]);
  });

  it("a probe error fails the property with the error (goss's err), and skip: true skips without probing", async () => {
    const g = gossfile(`
kernel-param:
  no.such.param: {value: "1"}
service:
  nginx: {running: true, skip: true}
`);
    const asked: ProbeRequest[] = [];
    const rs = await validateGossfile(g, opts(fake((r) => (asked.push(r), { error: "open /proc/sys/no/such/param: No such file or directory" }))));
    expect(rs.map(resultLine)).toEqual([
      "KernelParam: no.such.param: value: error: open /proc/sys/no/such/param: No such file or directory",
      "Service: nginx: running: skipped (skip: true)",
    ]);
    expect(asked.map((a) => a.kind)).toEqual(["kernel-param"]);
  });

  it("retry_count re-probes a failing resource (resource/retry.go), --retry-timeout re-runs the file", async () => {
    const g = gossfile(`
command:
  flaky:
    exit-status: 0
    retry_count: 2
    retry_delay: 1ms
`);
    let n = 0;
    const rs = await validateGossfile(g, opts(fake(() => ({ "exit-status": ++n < 3 ? 1 : 0, stdout: "", stderr: "" }))));
    expect(n).toBe(3);
    expect(rs[0]!.outcome).toBe("pass");
    let m = 0;
    const g2 = gossfile("command:\n  slow:\n    exit-status: 0\n");
    const rs2 = await validateGossfile(g2, { ...opts(fake(() => ({ "exit-status": ++m < 4 ? 1 : 0 }))), retryTimeoutMs: 5_000, sleepMs: 5 });
    expect(m).toBe(4);
    expect(rs2[0]!.outcome).toBe("pass");
  });

  it("matching checks need no guest", async () => {
    const g = gossfile(`
matching:
  check_instance_count: {content: 14, matches: {gt: 0}}
  check_status: {content: FAIL, matches: [{not: FAIL}]}
`);
    const rs = await validateGossfile(g, opts(fake(() => ({}))));
    expect(rs.map((r) => r.outcome)).toEqual(["pass", "fail"]);
  });
});

describe("the Python probe, run locally on this Debian host (python3 as in the guest)", () => {
  it("reads files, commands, kernel params, users and mounts as goss's system package does", () => {
    const dir = tempDir("vmkiln-probe-");
    writeFileSync(join(dir, "f"), "a\nb\n");
    chmodSync(join(dir, "f"), 0o640);
    const reqs = [
      { kind: "file", args: { path: join(dir, "f"), want: ["contents", "sha256"] } },
      { kind: "file", args: { path: join(dir, "missing") } },
      { kind: "command", args: { exec: "echo out; echo err >&2; exit 3", timeout: 5000 } },
      { kind: "command", args: { exec: "sleep 5", timeout: 100 } },
      { kind: "kernel-param", args: { name: "kernel.ostype" } },
      { kind: "user", args: { name: "root" } },
      { kind: "group", args: { name: "root" } },
      { kind: "mount", args: { mountpoint: "/" } },
      { kind: "port", args: { port: "tcp:notaport" } },
    ];
    const r = spawnSync("python3", ["-c", PROBE_SCRIPT], { input: JSON.stringify(reqs) });
    expect(r.status, r.stderr.toString()).toBe(0);
    const facts = JSON.parse(r.stdout.toString()) as Facts[];
    expect(facts[0]).toMatchObject({ exists: true, mode: "0640", filetype: "file", size: 4, contents: "a\nb\n", sha256: execFileSync("sha256sum", [join(dir, "f")]).toString().split(" ")[0] });
    expect(facts[1]).toMatchObject({ exists: false });
    expect(facts[2]).toMatchObject({ "exit-status": 3, stdout: "out\n", stderr: "err\n" });
    expect(facts[3]!.error).toMatch(/timed out/);
    expect(facts[4]).toMatchObject({ value: "Linux" });
    expect(facts[5]).toMatchObject({ exists: true, uid: 0, home: "/root" });
    expect(facts[6]).toMatchObject({ exists: true, gid: 0 });
    expect(facts[7]).toMatchObject({ exists: true });
    expect(facts[8]!.error).toMatch(/expected tcp\|tcp6\|udp\|udp6:NUMBER/);
  });
});

describe("test.goss_binary: upload, run, read goss's JSON", () => {
  // goss docs/cli.md, validate --format json; the shape of outputs/json.go (results, summary).
  const GOSS_JSON = {
    results: [
      { "resource-type": "Service", "resource-id": "sshd", property: "running", result: 0, successful: true, skipped: false, err: null, duration: 1_000_000,
        "matcher-result": { actual: true, expected: true, message: "matches expectation" } },
      { "resource-type": "File", "resource-id": "/etc/x", property: "mode", result: 1, successful: false, skipped: false, err: null, duration: 2_000_000,
        "matcher-result": { actual: "0600", expected: "0644", message: "to equal" } },
      { "resource-type": "File", "resource-id": "/etc/x", property: "owner", result: 2, successful: true, skipped: true, duration: 0, "matcher-result": {} },
    ],
    summary: { "test-count": 3, "failed-count": 1, "skipped-count": 1, "summary-line": "Count: 3, Failed: 1, Skipped: 1" },
  };

  it("parses goss's JSON into results with the same one-line messages", () => {
    const rs = parseGossJson(JSON.stringify(GOSS_JSON), "goss.yaml");
    expect(rs.map(resultLine)).toEqual([
      "Service: sshd: running: ok: true",
      'File: /etc/x: mode: expected to equal "0644", found "0600"',
      "File: /etc/x: owner: skipped (skipped by goss)",
    ]);
    expect(() => parseGossJson("not json", "g")).toThrow(/goss printed no JSON/);
  });

  it("uploads the binary and files, runs goss validate --format json as root, removes its directory (a fake goss; a local Communicator)", async () => {
    const guest = tempDir("vmkiln-fake-guest-");
    const fakeGoss = join(tmp, "fake-goss");
    // Prints goss's JSON and its own argv (so the test sees the flags vmkiln passed); exits 1 like
    // goss validate with a failure.
    writeFileSync(fakeGoss, `#!/bin/sh\necho "$@" > "$(dirname "$0")/../argv"\ncat <<'J'\n${JSON.stringify(GOSS_JSON)}\nJ\nexit 1\n`);
    chmodSync(fakeGoss, 0o755);
    const gf = join(tmp, "g.yaml");
    writeFileSync(gf, "service: {sshd: {running: true}}\n");
    const commands: string[] = [];
    // The "guest" is a directory here: its /tmp/vmkiln-goss.* paths map into it.
    const toHost = (s: string) => s.replaceAll("/tmp/vmkiln-goss.", `${guest}/vmkiln-goss.`);
    const local: Communicator = {
      async exec(command, o) {
        // The guest's sudo is not the host's: run as we are.
        const cmd = toHost(command).replace("sudo -n ", "");
        commands.push(command);
        const r = spawnSync("sh", ["-c", cmd]);
        for (const l of r.stdout.toString().split("\n")) if (l) o.onLine?.("stdout", l);
        return { exitCode: r.status, disconnected: false };
      },
      async capture(command) {
        return execFileSync("sh", ["-c", toHost(command)]).toString().replaceAll(`${guest}/vmkiln-goss.`, "/tmp/vmkiln-goss.");
      },
      async upload(from, to, o) {
        await copyFile(from, toHost(to));
        if (o.mode) chmodSync(toHost(to), o.mode);
      },
      async uploadContent() {},
      async download() {},
      async close() {},
    };
    const rs = await runGossBinary({ ssh: local, binary: fakeGoss, gossfile: gf, retryTimeoutMs: 30_000, sleepMs: 2000, signal: new AbortController().signal, events: new EventBus() });
    expect(rs.map((r) => r.outcome)).toEqual(["pass", "fail", "skip"]);
    expect(commands.find((c) => c.includes("validate"))).toMatch(/^cd '\/tmp\/vmkiln-goss\.\w+' && sudo -n \.\/goss --gossfile '\/tmp\/vmkiln-goss\.\w+\/goss\.yaml' validate --format json --retry-timeout 30000ms --sleep 2000ms$/);
    expect((await readFile(join(guest, "argv"), "utf8")).trim()).toMatch(/--gossfile .*goss\.yaml validate --format json --retry-timeout 30000ms --sleep 2000ms/);
    expect(commands.at(-1)).toMatch(/^rm -rf '\/tmp\/vmkiln-goss\./);
    expect(readdirSync(guest)).toEqual(["argv"]); // its directory is gone
  });
});
