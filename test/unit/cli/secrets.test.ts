// Secrets never reach what vmkiln prints (issue 12): inspect, validate problems, errors, --debug
// stacks, events and reporters, manifest.json. Secrets are password fields, VSPHERE_PASSWORD, URL
// userinfo, and variables the template marks sensitive, whichever way their value arrives.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { buildManifest } from "../../../src/artifact/manifest.js";
import { cli } from "../../helpers/main-cli.js";
import { EventBus } from "../../../src/log/events.js";
import { Redactor, specSecrets } from "../../../src/log/redact.js";
import { jsonReporter } from "../../../src/log/reporters/json.js";
import { plainReporter } from "../../../src/log/reporters/plain.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import { loadTemplate } from "../../../src/template/load.js";
import { TemplateError } from "../../../src/errors.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const IMAGE = path.join(GOOD, "images/fixture.qcow2");
const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = "Tr0ub4dor&3-horse";

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}


const savedEnv = { ...process.env };
afterEach(() => {
  for (const k of ["VSPHERE_USERNAME", "VSPHERE_PASSWORD", "VMKILN_TEST_TOKEN"]) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

const vsphereTemplate = (password?: string) =>
  `name: vs\nsource: { clone: { template: base } }\ndrivers:\n  vsphere:\n    url: https://vc.example\n    username: admin\n${password === undefined ? "" : `    password: ${JSON.stringify(password)}\n`}`;

describe("inspect", () => {
  it("masks drivers.vsphere.password from the template (it printed it)", async () => {
    const r = await cli(["inspect", file("vs1.yaml", vsphereTemplate(SECRET))]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).drivers.vsphere.password).toBe("***");
    expect(r.all).not.toContain(SECRET);
  });

  it("masks VSPHERE_PASSWORD when the driver falls back to it (it printed it)", async () => {
    process.env.VSPHERE_PASSWORD = SECRET;
    const r = await cli(["inspect", file("vs2.yaml", vsphereTemplate())]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).drivers.vsphere.password).toBe("***");
    expect(r.all).not.toContain(SECRET);
  });

  it("masks a -var value that fills a password field, wherever else it flowed (it printed it)", async () => {
    const t = file("vs3.yaml", vsphereTemplate("${var.pw}") + "output: { directory: \"./out-${var.pw}\" }\n");
    const r = await cli(["inspect", "-var", `pw=${SECRET}`, t]);
    expect(r.code).toBe(0);
    const spec = JSON.parse(r.stdout);
    expect(spec.drivers.vsphere.password).toBe("***");
    expect(spec.output.directory).toBe(path.join(dir, "out-***"));
    expect(spec.variables.pw).toBe("***");
    expect(r.all).not.toContain(SECRET);
  });

  it("masks URL userinfo in sources and checksum files", async () => {
    const t = file("url.yaml", "name: u\nsource: { cloud_image: { url: 'https://bob:hunter22@images.example/x.qcow2', checksum: 'file:https://bob:hunter22@images.example/SUMS' } }\ndrivers: { qemu: {} }\n");
    const r = await cli(["inspect", t]);
    expect(r.code).toBe(0);
    const spec = JSON.parse(r.stdout);
    expect(spec.source.location).toBe("https://***@images.example/x.qcow2");
    expect(spec.source.checksum.location).toBe("https://***@images.example/SUMS");
    expect(r.all).not.toContain("hunter22");
  });

  it("masks secret-named fields of cloud-init user-data even when nothing registered them", async () => {
    const t = file("ci.yaml", `name: c\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\ncloud_init: { user_data: { chpasswd: { expire: false }, users: [{ name: x, hashed_passwd: "$6$salt$hash" }], ssh_token: abc } }\n`);
    const r = await cli(["inspect", t]);
    const userData = JSON.parse(r.stdout).cloudInit.userData;
    expect(userData.users[0].hashed_passwd).toBe("***");
    expect(userData.ssh_token).toBe("***");
    expect(userData.chpasswd).toEqual({ expire: false });
  });
});

describe("sensitive variables", () => {
  const base = `source: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\nprovision:\n  - shell: { inline: ["login --token ${"${var.token}"}"], env: { TOKEN: "${"${var.token}"}" } }\n`;

  it.each([
    ["HCL2's block form", "name: s\nvariables: { token: { sensitive: true } }\n"],
    ["Packer JSON's list", "name: s\nsensitive_variables: [token]\nvariables: { token: '' }\n"],
  ])("%s: a -var value is masked in inspect", async (_, head) => {
    const r = await cli(["inspect", "-var", `token=${SECRET}`, file("sens.yaml", head + base)]);
    expect(r.code).toBe(0);
    const spec = JSON.parse(r.stdout);
    expect(spec.provision[0].inline).toEqual(["login --token ***"]);
    expect(spec.provision[0].env.TOKEN).toBe("***");
    expect(spec.sensitiveVariables).toEqual(["token"]);
    expect(r.all).not.toContain(SECRET);
  });

  it("a -var-file value and an ${env.X} default are masked too", async () => {
    const vars = file("vars.yaml", `token: ${JSON.stringify(SECRET)}\n`);
    const r1 = await cli(["inspect", "-var-file", vars, file("sens2.yaml", "name: s\nvariables: { token: { sensitive: true } }\n" + base)]);
    expect(r1.code).toBe(0);
    expect(r1.all).not.toContain(SECRET);
    process.env.VMKILN_TEST_TOKEN = SECRET;
    const r2 = await cli(["inspect", file("sens3.yaml", "name: s\nvariables: { token: { default: '${env.VMKILN_TEST_TOKEN}', sensitive: true } }\n" + base)]);
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.stdout).provision[0].env.TOKEN).toBe("***");
    expect(r2.all).not.toContain(SECRET);
  });

  it("a validate problem that quotes the value is masked, also in the --debug stack", async () => {
    const t = file("sens4.yaml", `name: s\nvariables: { mem: { sensitive: true } }\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: { memory: "\${var.mem}" } }\n`);
    const r = await cli(["validate", "--debug", "-var", `mem=${SECRET}`, t]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('drivers.qemu.memory: invalid size "***"');
    expect(r.stderr).toMatch(/\n\s+at /); // the stack is there, masked
    expect(r.all).not.toContain(SECRET);
  });

  it("a value JSON.stringify escapes is masked in its quoted form too", async () => {
    const tricky = 'pa"ss\\word';
    const t = file("sens5.yaml", `name: s\nvariables: { mem: { sensitive: true } }\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: { memory: "\${var.mem}" } }\n`);
    const r = await cli(["validate", "-var", `mem=${tricky}`, t]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid size "***"');
    expect(r.all).not.toContain(JSON.stringify(tricky).slice(1, -1));
  });

  it("a name in sensitive_variables that nothing declares or sets is a problem (a typo would leak)", async () => {
    const t = file("sens6.yaml", `name: s\nvariables: { token: x }\nsensitive_variables: [tokn]\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\n`);
    const err = await loadTemplate(t, { env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as TemplateError).problems).toEqual([{ path: "sensitive_variables[0]", message: 'no variable "tokn" is declared or set (did you mean "token"?)' }]);
    // Set by -var only: fine.
    await expect(loadTemplate(t, { env: {}, vars: { tokn: "v" } })).resolves.toBeDefined();
  });

  it("the spec names its secrets for library callers (build() registers them)", async () => {
    const spec = await loadTemplate(file("sens7.yaml", "name: s\nvariables: { token: { sensitive: true } }\nssh: { password: sshpw1 }\n" + base), { env: {}, vars: { token: SECRET } });
    expect(specSecrets(spec).sort()).toEqual([SECRET, "sshpw1"].sort());
  });
});

describe("cloud-init passwords in user-data (not only keys named password)", () => {
  const PW = { plain: "ptp-Zebra-7781", passwd: "$6$s1$passwdhashvalue", hashed: "$6$s2$hashedhashvalue", list1: "rootpw-Quartz-19", list2: "bobpw-Quartz-20", users: "chpw-Quartz-21" };
  const userData = {
    users: ["default", { name: "a", plain_text_passwd: PW.plain }, { name: "b", passwd: PW.passwd }, { name: "c", hashed_passwd: PW.hashed }],
    chpasswd: { expire: false, list: `root:${PW.list1}\nbob:${PW.list2}\ncarol:RANDOM`, users: [{ name: "d", password: PW.users, type: "text" }] },
  };
  const tpl = (extra = "") =>
    file("cipw.yaml", `name: c\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: { ${extra} } }\ncloud_init: { user_data: ${JSON.stringify(userData)} }\n`);

  it("the loader registers each one, so events and reporters mask them", async () => {
    const redactor = new Redactor();
    const spec = await loadTemplate(tpl(), { env: {}, redactor });
    for (const v of Object.values(PW)) expect(redactor.text(`x ${v} y`), v).toBe("x *** y");
    expect(redactor.list).not.toContain("RANDOM"); // cloud-init's keyword for "make one up", not a secret
    // build() registers specSecrets(spec): a library caller's build masks them too.
    const bus = new EventBus();
    bus.redactor.addAll(specSecrets(spec));
    const lines: string[] = [];
    bus.subscribe(jsonReporter({ write: (l) => lines.push(l), debug: true }));
    bus.subscribe(plainReporter({ write: (l) => lines.push(l), debug: true }));
    for (const v of Object.values(PW)) bus.info(`cloud-init: set password ${v}`);
    bus.emit({ type: "output", step: "shell", stream: "stdout", line: `chpasswd root:${PW.list1}` } as never);
    expect(lines.length).toBeGreaterThan(0);
    for (const v of Object.values(PW)) expect(lines.join("\n")).not.toContain(v);
  });

  it("the list form as a YAML list of user:password entries", async () => {
    const t = file("cipw2.yaml", `name: c\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\ncloud_init: { user_data: { chpasswd: { list: ["root:${PW.list1}", "bob:pw:with:colons"] } } }\n`);
    const redactor = new Redactor();
    await loadTemplate(t, { env: {}, redactor });
    expect(redactor.text(`${PW.list1} pw:with:colons`)).toBe("*** ***");
  });

  it("a validate problem that quotes one is masked", async () => {
    const r = await cli(["validate", "--debug", tpl(`memory: "${PW.plain}"`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('drivers.qemu.memory: invalid size "***"');
    for (const v of Object.values(PW)) expect(r.all).not.toContain(v);
  });
});

describe("errors", () => {
  it("a JSON syntax error in a var-file prints line:col, not the secret around it (it quoted it)", async () => {
    const vars = file("bad-vars.json", `{"pw": "${SECRET}" oops}`);
    const r = await cli(["validate", "-var-file", vars, file("vs4.yaml", vsphereTemplate("${var.pw}"))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`vmkiln: error: ${vars}: JSON syntax error at line 1:28: expected ',' or '}'\n`);
  });

  it("-var without NAME= does not echo the value", async () => {
    const r = await cli(["validate", "-var", SECRET, file("vs5.yaml", vsphereTemplate("x"))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('vmkiln: error: -var: expected NAME=VALUE, got no "="\n');
  });
});

describe("events, reporters and the manifest", () => {
  it("every text field of every event is masked, machine fields are not", () => {
    const bus = new EventBus();
    bus.addSecret("abc");
    const lines: string[] = [];
    const plain: string[] = [];
    bus.subscribe(jsonReporter({ write: (l) => lines.push(l), debug: true }));
    bus.subscribe(plainReporter({ write: (l) => plain.push(l), debug: true }));
    bus.emit({ type: "step-start", step: "shell abc", index: 0, total: 1 });
    bus.emit({ type: "artifact", name: "img-abc.qcow2", path: "/out/abc/img.qcow2", size: 1, sha256: "abc".repeat(21) + "f" });
    bus.emit({ type: "progress", task: "download https://u:p@h/abc", done: 1, total: 2, unit: "bytes" });
    bus.emit({ type: "cleanup", what: "remove abc", ok: false, error: "abc failed" });
    bus.debug("boot command: abc<enter>", "boot");
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events[0]).toMatchObject({ step: "shell ***" });
    expect(events[1]).toMatchObject({ name: "img-***.qcow2", path: "/out/***/img.qcow2", sha256: "abc".repeat(21) + "f" });
    expect(events[2]).toMatchObject({ task: "download https://***@h/***" });
    expect(events[3]).toMatchObject({ what: "remove ***", error: "*** failed" });
    expect(events[4]).toMatchObject({ message: "boot command: ***<enter>", level: "debug" });
    expect(plain.join("\n")).not.toContain("abc ");
  });

  it("manifest.json masks its text fields", () => {
    const bus = new EventBus();
    bus.addSecret(SECRET);
    const ctx = {
      events: bus,
      buildId: "b1",
      spec: { name: `n-${SECRET}`, templatePath: "/t.yaml", source: { location: `https://u:${SECRET}@h/x` } },
      driver: { name: "qemu" },
      artifacts: [],
      timings: [{ step: `shell ${SECRET}`, durationMs: 1, ok: true }],
      durations: {},
      startedAt: Date.now(),
    } as unknown as BuildContext;
    const m = buildManifest(ctx);
    expect(JSON.stringify(m)).not.toContain(SECRET);
    expect(m.template.name).toBe("n-***");
    expect(m.source.location).toBe("https://***@h/x");
  });
});

describe("Redactor", () => {
  it("masks the longest secret first, so a secret containing another leaves nothing behind", () => {
    const r = new Redactor();
    r.add("abc");
    r.add("abcdef");
    expect(r.text("x abcdef y abc")).toBe("x *** y ***");
  });

  it("ignores blank values and keeps digests in machine fields", () => {
    const r = new Redactor();
    r.add("");
    r.add("   ");
    r.add(undefined);
    expect(r.list).toEqual([]);
    r.add("1");
    expect(r.value({ sha256: "111", type: "1", message: "a1b" })).toEqual({ sha256: "111", type: "1", message: "a***b" });
  });

  it("masks secret-named keys whole only when asked (printed specs)", () => {
    const r = new Redactor();
    expect(r.value({ password: "x", nested: [{ api_token: 5 }] }, { byKey: true })).toEqual({ password: "***", nested: [{ api_token: "***" }] });
    expect(r.value({ password: "x" })).toEqual({ password: "x" });
  });
});
