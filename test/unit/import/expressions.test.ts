// The two expression languages `vmkiln import` reads, into vmkiln's own template text: Packer JSON's
// Go templates and HCL2 expressions (as @cdktn/hcl2json leaves them: template text).
import { describe, expect, it } from "vitest";
import { Generated } from "../../../src/import/generated.js";
import { EvalError, evalGoTemplate, type GoScope } from "../../../src/import/go-template.js";
import { evalTemplate, type HclScope } from "../../../src/import/hcl-expr.js";
import { executeCommandSudo } from "../../../src/import/provisioners.js";
import { stripSudo } from "../../../src/import/builders/common.js";
import { goTimeFormat, hclDateFormat } from "../../../src/import/time-format.js";
import type { Val } from "../../../src/import/values.js";

const NOW = new Date("2026-01-02T03:04:05Z");

function go(s: string, extra: Partial<GoScope> = {}) {
  const notes: string[] = [];
  const scope: GoScope = { vars: new Map([["a", "1"], ["dir", "/tpl"], ["list", "x-y-z"]]), templateDir: "/tpl", cwd: "/cwd", generated: new Generated(NOW), note: (t) => notes.push(t), ...extra };
  return { value: evalGoTemplate(s, scope), notes, generated: scope.generated };
}

function hcl(s: string, vars: Record<string, Val | undefined> = {}, locals: Record<string, string> = {}) {
  const notes: string[] = [];
  const generated = new Generated(NOW);
  const scope: HclScope = {
    vars: new Map(Object.entries({ name: "deb", mem: "1024", on: true, list: ["a", "b"], map: { amd64: "x86_64" }, ...vars })),
    local: (n) => evalTemplate(locals[n] ?? "", scope),
    pathRoot: "/tpl",
    pathCwd: "/cwd",
    source: { name: "vm", type: "qemu" },
    generated,
    note: (t) => notes.push(t),
  };
  return { value: evalTemplate(s, scope), notes, generated };
}

describe("Packer JSON Go templates", () => {
  it("keeps user variables as vmkiln variables, with backticks or quotes", () => {
    expect(go("x-{{user `a`}}-{{ user \"a\" }}").value).toBe("x-${var.a}-${var.a}");
  });
  it("reads the environment as Packer does (empty when unset)", () => {
    expect(go("{{env `HOME`}}").value).toBe("${env.HOME:-}");
  });
  it("escapes a literal ${ so vmkiln keeps it", () => {
    expect(go("echo ${HOME} {{user `a`}}").value).toBe("echo $${HOME} ${var.a}");
  });
  it("keeps build values for the field that renders them", () => {
    expect(go("http://{{ .HTTPIP }}:{{.HTTPPort}}/{{ .Name }}").value).toBe("http://{{ .HTTPIP }}:{{.HTTPPort}}/{{ .Name }}");
    expect(go("{{ build `Host` }}").value).toBe("{{ build `Host` }}");
  });
  it("turns {{timestamp}} and {{isotime}} into variables fixed at import", () => {
    const r = go("{{timestamp}}/{{isotime \"2006-01-02\"}}");
    expect(r.value).toBe("${var.timestamp}/${var.isotime_2006_01_02}");
    expect(r.generated.vars.get("timestamp")!.value).toBe(String(NOW.getTime() / 1000));
    expect(r.generated.vars.get("isotime_2006_01_02")!.value).toBe("2026-01-02");
  });
  it("inlines what a vmkiln variable cannot hold (a variable's default referring to another)", () => {
    const r = go("{{user `a`}}-{{timestamp}}", { inlineVars: true });
    expect(r.value).toBe("1-1767323045");
    expect(r.notes.join("\n")).toMatch(/inlined/);
  });
  it("template_dir, pwd, build_name, build_type", () => {
    expect(go("{{template_dir}}|{{pwd}}|{{build_name}}|{{build_type}}", { buildName: "b", buildType: "qemu" }).value).toBe("/tpl|/cwd|b|qemu");
  });
  it("applies string functions to the variables' current values, and says so", () => {
    const r = go("{{ upper `abc` }} {{ split (user `list`) \"-\" 1 }} {{ replace_all \"-\" \"_\" (user `list`) }} {{ lower \"A\" }}");
    expect(r.value).toBe("ABC y x_y_z a");
    expect(r.notes.some((n) => /import time/.test(n))).toBe(true);
  });
  it("trims around {{- -}}", () => {
    expect(go("a  {{- user `a` -}}  b").value).toBe("a${var.a}b");
  });
  for (const bad of ["{{user `nope`}}", "{{ packer_version }}", "{{ .Unknown }}", "{{ user", "{{ split `a` }}", "{{ uuid 1 }}"])
    it(`refuses ${bad} with an EvalError`, () => expect(() => go(bad)).toThrow(EvalError));
});

describe("HCL2 expressions", () => {
  it("keeps a scalar variable a reference; a whole-string reference keeps its type", () => {
    expect(hcl("${var.name}").value).toBe("${var.name}");
    expect(hcl("deb-${var.name}-x").value).toBe("deb-${var.name}-x");
    expect(hcl("${var.on}").value).toBe("${var.on}");
  });
  it("writes a list or map variable in place (vmkiln variables are single values), with a note", () => {
    const r = hcl("${var.list}");
    expect(r.value).toEqual(["a", "b"]);
    expect(r.notes[0]).toMatch(/list: vmkiln variables are single values/);
  });
  it("expands locals, with their variables still references", () => {
    expect(hcl("${local.x}/y", {}, { x: "${path.root}/${var.name}" }).value).toBe("/tpl/${var.name}/y");
  });
  it("escapes: $${ and %%{ are literal", () => {
    expect(hcl("a $${HOME} %%{x}").value).toBe("a $${HOME} %{x}");
  });
  it("nested templates in function arguments, with HCL's escapes", () => {
    expect(hcl('${upper("a\\"b-${"c"}")}').value).toBe('A"B-C');
  });
  it("the functions templates commonly call", () => {
    expect(hcl('${join(",", ["a", var.name])}').value).toBe("a,${var.name}");
    expect(hcl('${lookup(var.map, "amd64", "")}').value).toBe("x86_64");
    expect(hcl('${concat(["a"], ["b"])}').value).toEqual(["a", "b"]);
    expect(hcl('${format("%s-%d", "a", 2)}').value).toBe("a-2");
    expect(hcl("${var.mem * 2}").value).toBe(2048);
    expect(hcl('${var.name == "deb" ? "yes" : "no"}').value).toBe("yes");
    expect(hcl("${var.on == true ? 1 : 0}").value).toBe(1);
    expect(hcl('${env("HOME")}').value).toBe("${env.HOME:-}");
    expect(hcl("${source.name}-${source.type}").value).toBe("vm-qemu");
    expect(hcl('${trimsuffix("a.iso", ".iso")}').value).toBe("a");
    expect(hcl('${element(["a","b"], 3)}').value).toBe("b");
  });
  it("timestamp(), formatdate() and legacy_isotime() become variables fixed at import", () => {
    const r = hcl('${formatdate("YYYYMMDD-hhmm", timestamp())} ${timestamp()} ${legacy_isotime("2006")}');
    expect(r.value).toBe("${var.formatdate_YYYYMMDD_hhmm} ${var.timestamp_rfc3339} ${var.isotime_2006}");
    expect(r.generated.vars.get("formatdate_YYYYMMDD_hhmm")!.value).toBe("20260102-0304");
  });
  it("a variable used in a function is written with its current value, and says so", () => {
    const r = hcl("${upper(var.name)}");
    expect(r.value).toBe("DEB");
    expect(r.notes[0]).toMatch(/var\.name .* current value is written in place/);
  });
  it("a variable without a value stays a reference, but cannot be computed with", () => {
    expect(hcl("${var.req}", { req: undefined }).value).toBe("${var.req}");
    expect(() => hcl("${upper(var.req)}", { req: undefined })).toThrow(/has no value/);
  });
  for (const [what, expr] of [
    ["a directive", "%{ if true }x%{ endif }"],
    ["a for expression", "${[for x in var.list : x]}"],
    ["a splat", "${var.list[*]}"],
    ["an unknown function", '${bcrypt("x")}'],
    ["a data source", "${data.http.x.body}"],
    ["packer.version", "${packer.version}"],
    ["build.ID", "${build.ID}"],
    ["an undeclared variable", "${var.nope}"],
  ] as const)
    it(`refuses ${what} with an EvalError`, () => expect(() => hcl(expr)).toThrow(EvalError));
});

describe("execute_command and shutdown_command", () => {
  for (const [cmd, sudo, dropped] of [
    ["echo 'vagrant' | {{.Vars}} sudo -S -E sh -eux '{{.Path}}'", true, ["sh -eux"]],
    ["echo 'vagrant' | {{ .Vars }} sudo -S -E bash '{{ .Path }}'", true, []],
    ["chmod +x {{ .Path }}; sudo -n sh -c '{{ .Vars }} {{ .Path }}'", true, []],
    ["sudo -S {{ .Vars }} bash {{ .Path }}", true, []],
    ["{{ .Vars }} {{ .Path }}", false, []],
    ["chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}", false, []],
    ["bash '{{.Path}}'", false, []],
  ] as const)
    it(`${cmd}: sudo ${sudo}`, () => expect(executeCommandSudo(cmd)).toEqual({ sudo, dropped }));
  for (const cmd of ["{{ .Vars }} cmd /c \"{{ .Path }}\"", "sudo {{.Path}} --extra", "echo pw | {{.Path}}", "BUILD=1; if true; then sudo bash '{{.Path}}'; fi"])
    it(`${cmd}: not a sudo wrapper`, () => expect(executeCommandSudo(cmd)).toBeUndefined());
  it("drops sudo from shutdown commands (vmkiln runs them as root)", () => {
    expect(stripSudo("echo 'vagrant' | sudo -S /sbin/shutdown -hP now")).toBe("/sbin/shutdown -hP now");
    expect(stripSudo("echo 'p' | sudo -S -E sh -c 'usermod -L u && shutdown -P now'")).toBe("usermod -L u && shutdown -P now");
    expect(stripSudo("shutdown -P now")).toBe("shutdown -P now");
    expect(stripSudo("sudo -n poweroff")).toBe("poweroff");
  });
});

describe("time formats", () => {
  it("Go layouts", () => expect(goTimeFormat(NOW, "20060102150405 Jan Mon Z07:00")).toBe("20260102030405 Jan Fri Z"));
  it("HCL formatdate", () => expect(hclDateFormat(NOW, "YYYY-MM-DD'T'hh:mm:ssZ EEE MMM")).toBe("2026-01-02T03:04:05Z Fri Jan"));
});

describe("regressions found by fuzzing (test/unit/fuzz/import-expressions.fuzz.test.ts)", () => {
  // Counterexample (seed 1173271280): a "__proto__" key set the parsed object's prototype instead of
  // becoming a key, so the template lost the key and the object gained inherited properties.
  it('a "__proto__" key is an own key, as JSON.parse makes it', async () => {
    const { parseJsonWithLines } = await import("../../../src/import/json-text.js");
    const v = parseJsonWithLines('{"__proto__": {"polluted": 1}, "a": 2}').value as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(["__proto__", "a"]);
    expect((v as { polluted?: number }).polluted).toBeUndefined();
    expect(v).toEqual(JSON.parse('{"__proto__": {"polluted": 1}, "a": 2}'));
  });
});
