import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TemplateError, UserError } from "../../../src/errors.js";
import { loadTemplate, parseVarArgs, specFromObject } from "../../../src/template/load.js";
import { problemsOf } from "../../helpers/template.js";
import { tempDir } from "../../helpers/tmp.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const image = path.join(GOOD, "images/fixture.qcow2");

/** A minimal valid template object to vary in tests. */
function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "t",
    source: { cloud_image: { path: "./images/fixture.qcow2", checksum: "none" } },
    drivers: { qemu: {} },
    ...extra,
  };
}


function tmp(files: Record<string, string>): string {
  const dir = tempDir("vmkiln-template-");
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

describe("loadTemplate: good templates", () => {
  it("fills every default for the minimal YAML template", async () => {
    const spec = await loadTemplate(path.join(GOOD, "minimal.yaml"), { env: {} });
    expect(spec).toEqual({
      name: "minimal",
      templatePath: path.join(GOOD, "minimal.yaml"),
      templateDir: GOOD,
      variables: {},
      sensitiveVariables: [],
      warnings: [],
      source: { kind: "cloud-image", location: image, checksum: { kind: "none" }, format: undefined },
      drivers: {
        qemu: {
          accelerator: "auto",
          cpus: 2,
          memory: 1024,
          diskSize: undefined,
          diskMode: "overlay",
          firmware: "bios",
          machine: "q35",
          binary: "qemu-system-x86_64",
          sshHostPort: undefined,
          headless: true,
          extraArgs: [],
        },
      },
      ssh: { username: "vmkiln", password: undefined, privateKeyFile: undefined, port: 22, timeoutMs: 900_000 },
      cloudInit: { userData: {}, metaData: {}, networkConfig: undefined, vendorData: undefined },
      provision: [],
      generalize: {
        cloudInit: true, keepDefaultUser: false, buildUser: true, passwdBackups: true, network: true, hostname: true, dhcp: true,
        machineId: true, randomSeed: true, sshHostKeys: true, tmp: true, shellHistory: true, packageCache: true, logs: true, trim: true,
      },
      shutdown: { mode: "fast", command: undefined, timeoutMs: 300_000 },
      output: { directory: path.join(GOOD, "output/minimal"), formats: ["qcow2"], compression: "zlib", basename: "minimal", ova: { osType: "linux", vmxVersion: 13 }, sbom: true, publish: [] },
    });
  });

  it("converts units, resolves paths, names provisioners and applies variables in the full template", async () => {
    const spec = await loadTemplate(path.join(GOOD, "full.yaml"), { env: {} });
    expect(spec.source.checksum).toEqual({ kind: "sha256", hex: "0123456789abcdef".repeat(4) });
    expect(spec.drivers.qemu).toMatchObject({ cpus: 4, memory: 2048, diskSize: 4 * 1024 ** 3, firmware: "efi", sshHostPort: 2222 });
    expect(spec.ssh).toMatchObject({ username: "builder", timeoutMs: 90 * 60_000 });
    const options = { pauseBeforeMs: 0, maxRetries: 0, timeoutMs: undefined, only: undefined, except: [] };
    expect(spec.provision).toEqual([
      { type: "wait_cloud_init", name: "wait_cloud_init #1", options, timeoutMs: 900_000 },
      {
        type: "shell",
        name: "say hello",
        options,
        inline: ["echo hello", "echo ${HOME}"],
        script: undefined,
        env: { GREETING: "hello", PORT: "8080" },
        sudo: true,
        expectDisconnect: false,
      },
      { type: "shell", name: "shell #3", options, inline: undefined, script: path.join(GOOD, "scripts/setup.sh"), env: {}, sudo: false, expectDisconnect: false },
      // The trailing slash survives resolution: it means "the directory's contents".
      { type: "file", name: "file #4", options, direction: "upload", source: path.join(GOOD, "files") + "/", destination: "/opt/files" },
    ]);
    expect(spec.generalize.trim).toBe(false);
    expect(spec.generalize.logs).toBe(true);
    expect(spec.shutdown).toEqual({ mode: "fast", command: "sudo shutdown -h now", timeoutMs: 90_000 });
    expect(spec.output).toEqual({
      directory: path.join(GOOD, "out/fixture-node"),
      formats: ["qcow2", "ova"],
      compression: "zstd",
      basename: "fixture-node",
      ova: { osType: "linux", vmxVersion: 13 },
      sbom: true,
      publish: [],
    });
    expect(spec.cloudInit.userData).toEqual({ packages: ["curl"] });
  });

  it("loads JSON templates", async () => {
    const dir = tmp({
      "t.json": JSON.stringify({ name: "j", source: { cloud_image: { url: "https://example.invalid/x.img", checksum: "a".repeat(128) } }, drivers: { qemu: { memory: "512M" } } }),
    });
    const spec = await loadTemplate(path.join(dir, "t.json"), { env: {} });
    expect(spec.source).toEqual({ kind: "cloud-image", location: "https://example.invalid/x.img", checksum: { kind: "sha512", hex: "a".repeat(128) }, format: undefined });
    expect(spec.drivers.qemu?.memory).toBe(512);
    expect(spec.output.directory).toBe(path.join(dir, "output/j"));
  });

  it("reports a JSON syntax error with line:col", async () => {
    const dir = tmp({ "t.json": '{\n  "name": "x",\n  }' });
    await expect(loadTemplate(path.join(dir, "t.json"))).rejects.toThrow(/JSON syntax error at line 3:3/);
  });

  it("throws TEMPLATE_NOT_FOUND for an unreadable file", async () => {
    const err = await loadTemplate("/nonexistent/t.yaml").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err).not.toBeInstanceOf(TemplateError);
    expect((err as UserError).code).toBe("TEMPLATE_NOT_FOUND");
    expect((err as UserError).message).toMatch(/^\/nonexistent\/t\.yaml: cannot read: ENOENT/);
  });
});

describe("variables", () => {
  const tpl = (vars: Record<string, unknown>) =>
    base({ variables: vars, ssh: { username: "${var.user}", password: "${var.pw}" }, shutdown: { command: "${var.cmd}" } });

  it("applies template < var files (in order) < -var (in order)", () => {
    const dir = tmp({ "a.yaml": "user: from-a\npw: from-a\n", "b.json": JSON.stringify({ pw: "from-b", cmd: 7 }) });
    const spec = specFromObject(tpl({ user: "tpl", pw: "tpl", cmd: "tpl" }), {
      baseDir: GOOD,
      varFiles: [path.join(dir, "a.yaml"), path.join(dir, "b.json")],
      vars: parseVarArgs(["cmd=halt -p", "cmd=poweroff --force"]),
      env: {},
    });
    expect(spec.ssh).toMatchObject({ username: "from-a", password: "from-b" });
    expect(spec.shutdown.command).toBe("poweroff --force");
    expect(spec.variables).toEqual({ user: "from-a", pw: "from-b", cmd: "poweroff --force" });
  });

  it("allows -var for undeclared variables and coerces declared scalars", () => {
    const spec = specFromObject(base({ variables: { n: 3, on: true }, drivers: { qemu: { cpus: "${var.n}", headless: "${var.on}" } }, ssh: { username: "${var.extra}" } }), {
      baseDir: GOOD,
      vars: { extra: "u" },
      env: {},
    });
    expect(spec.drivers.qemu).toMatchObject({ cpus: 3, headless: true });
    expect(spec.ssh.username).toBe("u");
  });

  it("reads env, env defaults (also for empty values), ${name} and the $${ escape", () => {
    const spec = specFromObject(
      base({
        variables: { home: "${env.HOME_DIR}" },
        provision: [
          {
            shell: {
              inline: ["${var.home} ${env.MISSING:-fallback} ${env.EMPTY:-dflt} ${name} $${literal} $$x"],
            },
          },
        ],
      }),
      { baseDir: GOOD, env: { HOME_DIR: "/home/me", EMPTY: "" } },
    );
    expect(spec.provision[0]).toMatchObject({ inline: ["/home/me fallback dflt t ${literal} $$x"] });
  });

  it("reports undefined variables, unset env and bad references at their paths", () => {
    const problems = problemsOf(() =>
      specFromObject(
        base({
          variables: { a: "${var.b}" },
          cloud_init: { user_data: { runcmd: ["echo ${var.nope}"] } },
          shutdown: { command: "${env.UNSET_X}" },
          ssh: { username: "${bogus}", password: "${var.unterminated" },
        }),
        { baseDir: GOOD, env: {} },
      ),
    );
    expect(problems).toEqual({
      "variables.a": "variables cannot reference other variables (${var.b})",
      "cloud_init.user_data.runcmd[0]": "undefined variable var.nope",
      "shutdown.command": "environment variable UNSET_X is not set",
      "ssh.username": 'unknown reference "${bogus}" (use var.NAME, env.NAME or name)',
      "ssh.password": 'unterminated "${" (write "$${" for a literal "${")',
    });
  });

  it("parseVarArgs splits on the first = and rejects a missing =", () => {
    expect(parseVarArgs(["a=1", "b=x=y", "c="])).toEqual({ a: "1", b: "x=y", c: "" });
    expect(() => parseVarArgs(["novalue"])).toThrow(UserError);
    expect(() => parseVarArgs(["=v"])).toThrow(/expected NAME=VALUE/);
  });

  it("reports a var file that is missing or not a flat map", () => {
    const dir = tmp({ "bad.yaml": "a: [1, 2]\n" });
    expect(() => specFromObject(base(), { baseDir: GOOD, varFiles: [path.join(dir, "nope.yaml")] })).toThrow(/cannot read: ENOENT/);
    expect(problemsOf(() => specFromObject(base(), { baseDir: GOOD, varFiles: [path.join(dir, "bad.yaml")] }))).toEqual({
      a: "expected a string, number or boolean",
    });
  });
});

describe("specFromObject: shapes and rules", () => {
  const spec = (extra: Record<string, unknown>) => specFromObject(base(extra), { baseDir: GOOD, env: {} });

  it("generalize: false turns every operation off (keeps the default user); true keeps them on", () => {
    const off = spec({ generalize: false }).generalize;
    const on = spec({ generalize: true }).generalize;
    expect(Object.keys(off)).toHaveLength(15);
    for (const [k, v] of Object.entries(off)) expect(v, k).toBe(k === "keepDefaultUser");
    for (const [k, v] of Object.entries(on)) expect(v, k).toBe(k !== "keepDefaultUser");
  });

  it("generalize: each operation switches on its own; a mapping leaves the others on", () => {
    const g = spec({ generalize: { dhcp: false, keep_default_user: true, tmp: "false" } }).generalize;
    expect(g).toMatchObject({ dhcp: false, keepDefaultUser: true, tmp: false, logs: true, network: true, randomSeed: true });
  });

  it("accepts the iso source kind and a local file: checksum", () => {
    // An install needs an empty disk of a given size (rule: drivers.qemu.disk_size).
    const s = spec({ source: { iso: { path: "./images/fixture.qcow2", checksum: "file:./scripts/setup.sh" } }, drivers: { qemu: { disk_size: "4G" } } }).source;
    expect(s).toEqual({
      kind: "iso",
      location: image,
      checksum: { kind: "file", location: path.join(GOOD, "scripts/setup.sh") },
      format: undefined,
    });
  });

  it("keeps a remote file: checksum as a URL", () => {
    const s = spec({ source: { cloud_image: { url: "https://h/x.img", checksum: "file:https://h/SHA256SUMS" } } }).source;
    expect(s.checksum).toEqual({ kind: "file", location: "https://h/SHA256SUMS" });
  });

  it.each([
    [{ drivers: { qemu: { memory: "1G" } } }, "memory", 1024],
    [{ drivers: { qemu: { memory: "1024M" } } }, "memory", 1024],
    [{ drivers: { qemu: { memory: "2GiB" } } }, "memory", 2048],
    [{ drivers: { qemu: { disk_size: "512MiB" } } }, "diskSize", 512 * 1024 ** 2],
    [{ drivers: { qemu: { disk_size: 1048576 } } }, "diskSize", 1048576],
    [{ drivers: { qemu: { disk_size: "1T" } } }, "diskSize", 1024 ** 4],
  ])("qemu %j → %s = %d", (extra, key, value) => {
    expect(spec(extra).drivers.qemu).toMatchObject({ [key]: value });
  });

  it("a bare `qemu:` (null) means all defaults", () => {
    expect(spec({ drivers: { qemu: null } }).drivers.qemu?.cpus).toBe(2);
  });

  it.each([
    ["source", { source: {} }, "one of cloud_image or iso or clone is required"],
    ["source.cloud_image", { source: { cloud_image: { checksum: "none" } } }, "one of path or url is required"],
    ["provision[0]", { provision: [{}] }, "expected one provisioner type (shell, file, wait_cloud_init, ansible, ansible_local, shell_local, restart, breakpoint)"],
    ["provision[0].shell", { provision: [{ shell: {} }] }, "one of inline or script is required"],
    ["provision[0].file.destination", { provision: [{ file: { source: "./files" } }] }, "required"],
    ["provision[0].file.source", { provision: [{ file: { source: "./images/fixture.qcow2/", destination: "/x" } }] }, "not a directory"],
    ["provision[0].shell.env.1BAD", { provision: [{ shell: { inline: [], env: { "1BAD": "x" } } }] }, "invalid name"],
    ["ssh.private_key_file", { ssh: { private_key_file: "./id_nope" } }, "file not found: " + path.join(GOOD, "id_nope")],
    ["ssh.port", { ssh: { port: 0 } }, "must be at least 1"],
    ["ssh.port", { ssh: { port: "x" } }, "expected an integer from 1 to 65535"],
    ["drivers.qemu.cpus", { drivers: { qemu: { cpus: "65" } } }, "must be at most 64"],
    ["drivers.qemu.machine", { drivers: { qemu: { machine: "" } } }, "must not be empty"],
    ["drivers.qemu.headless", { drivers: { qemu: { headless: "yes" } } }, "expected true or false"],
    ["drivers.qemu.extra_args[1]", { drivers: { qemu: { extra_args: ["-a", 3] } } }, "expected a string"],
    ["drivers.qemu.memory", { drivers: { qemu: { memory: "4500K" } } }, "whole number of MiB"],
    ["output.formats", { output: { formats: [] } }, "must have at least 1 item"],
    ["output.basename", { output: { basename: "a/b" } }, "must contain only"],
    ["cloud_init.user_data", { cloud_init: { user_data: "#cloud-config" } }, "expected a mapping"],
    ["shutdown.timeout", { shutdown: { timeout: -1 } }, "invalid duration"],
    ["shutdown.mode", { shutdown: { mode: "slow" } }, "must be one of fast, graceful"],
    ["generalize", { generalize: "yes" }, "expected true, false or a mapping"],
    ["generalize.dhcp", { generalize: { dhcp: "no" } }, "expected true or false"],
    ["generalize.keep_default_user", { generalize: { keep_default_user: 1 } }, "expected true or false"],
    ["generalize.journal", { generalize: { journal: true } }, "unknown field"],
  ])("%s", (at, extra, message) => {
    expect(problemsOf(() => spec(extra))[at]).toContain(message);
  });

  it("rejects a non-mapping document", () => {
    expect(problemsOf(() => specFromObject([1, 2], { baseDir: GOOD }))).toEqual({ "": "expected a mapping at the top level" });
  });
});
