// Reading gossfiles: templates (goss docs/gossfile.md "Templates"), includes (docs "gossfile";
// store.go mergeJSONData), every resource type's attributes (docs "Available tests"), and the
// exit-2 errors for what vmkiln does not evaluate.
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { loadGossfile, MAX_GOSSFILE_BYTES, readVarsFile } from "../../../src/goss/load.js";
import { compileFor } from "../../../src/goss/matchers.js";
import { renderGossTemplate } from "../../../src/goss/template.js";
import { REPO } from "../../helpers/cli.js";
import { tempDir } from "../../helpers/tmp.js";

const FIX = join(REPO, "test/fixtures/goss");
const tmp = tempDir("vmkiln-goss-load-");
const write = (name: string, text: string) => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};
const noData = { Vars: {}, Env: {} };

describe("templates (Go text/template subset)", () => {
  it("renders the docs' example: range over vars by an env lookup, if with regexMatch, range over users, mkSlice", () => {
    const vars = readVarsFile(join(FIX, "vars.yaml"));
    const g = loadGossfile(join(FIX, "templated.yaml"), { Vars: vars, Env: { OS: "centos" } });
    const ids = g.resources.map((r) => `${r.def.type}:${r.id}`);
    expect(ids).toEqual(["package:kernel", "package:libselinux", "user:user1", "user:user2", "file:/etc/passwd", "file:/etc/group"]);
    expect(g.resources[0]!.expect.find((e) => e.prop.key === "versions")!.value).toEqual(["4.9.11-centos", "4.9.11-centos2"]);
    const deb = loadGossfile(join(FIX, "templated.yaml"), { Vars: vars, Env: { OS: "debian" } });
    expect(deb.resources.map((r) => r.id)).not.toContain("libselinux");
    expect(deb.resources[0]!.expect.find((e) => e.prop.key === "versions")!.value).toEqual(["4.9.11-debian", "4.9.11-debian2"]);
  });

  it("text/template basics: fields, missing keys, trim markers, comments, if/else if/else, with, variables, eq with several args", () => {
    const d = { Vars: { a: { b: "x" }, n: 3, list: [], m: { k2: 2, k1: 1 } }, Env: { HOME: "/root" } };
    const r = (t: string) => renderGossTemplate(t, d, "t.yaml");
    expect(r("{{ .Vars.a.b }}-{{.Env.HOME}}")).toBe("x-/root");
    // `$` is the data given to the template, in any scope (text/template "Variables"); it was
    // looked up under the wrong name and failed as an undefined variable.
    expect(r("{{ range .Vars.m }}{{ $.Vars.a.b }}{{ $.Env.HOME }};{{ end }}")).toBe("x/root;x/root;");
    expect(r("{{ .Vars.missing }}")).toBe("<no value>");
    expect(r("a  {{- /* c */ -}}  b")).toBe("ab");
    expect(r("{{if eq .Vars.n 1 2}}one{{else if eq .Vars.n 3}}three{{else}}other{{end}}")).toBe("three");
    expect(r("{{range .Vars.list}}x{{else}}empty{{end}}")).toBe("empty");
    expect(r("{{range $k, $v := .Vars.m}}{{$k}}={{$v}};{{end}}")).toBe("k1=1;k2=2;");
    expect(r("{{with .Vars.a}}{{.b}}{{end}}")).toBe("x");
    expect(r('{{ $x := "v" }}{{ $x }}{{ "Q" | toLower }}')).toBe("vq");
    expect(r('{{ getEnv "VMKILN_SURELY_UNSET" "dflt" }}')).toBe("dflt");
    expect(r("{{ len .Vars.m }} {{ not .Vars.list }} {{ and 1 0 }} {{ or 0 2 }}")).toBe("2 true 0 2");
  });

  it("refuses what it does not implement with exit 2 naming the construct", () => {
    const bad = (t: string) => () => renderGossTemplate(t, noData, "t.yaml");
    expect(bad('{{ "x" | upper | repeat 5 }}')).toThrow(/t\.yaml: template: function "repeat" is not supported by vmkiln/);
    expect(bad('{{ printf "%d" 1 }}')).toThrow(/function "printf" is not supported/);
    expect(bad('{{ define "x" }}{{ end }}')).toThrow(/\{\{define\}\} is not supported by vmkiln/);
    expect(bad("{{ if true }}x")).toThrow(/line 1: \{\{if\}\} without \{\{end\}\}/);
    expect(bad("{{ end }}")).toThrow(/unexpected \{\{end\}\}/);
    expect(bad("{{ .Vars.a.b }}")).toThrow(/nil pointer evaluating \.b/);
    expect(bad("{{ $nope }}")).toThrow(/undefined variable "\$nope"/);
    expect(bad("{{ .Vars")).toThrow(/unclosed action/);
    try {
      bad("{{ printf }}")();
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(2);
    }
  });
});

describe("gossfile includes (docs gossfile; store.go mergeJSONData)", () => {
  it("follows globs relative to the including file, leaves out skip: true, and a later definition replaces an earlier one", () => {
    const g = loadGossfile(join(FIX, "main.yaml"), noData);
    const ids = g.resources.map((r) => `${r.def.type}:${r.id}`);
    expect(ids.sort()).toEqual(["command:uname -s", "kernel-param:kernel.ostype", "port:tcp:22", "service:ssh"]);
    // include/a.yaml (read after main.yaml) redefines port tcp:22 with an ip list
    expect(g.resources.find((r) => r.id === "tcp:22")!.expect.map((e) => e.prop.key)).toEqual(["listening", "ip"]);
    expect(g.files.map((f) => f.slice(FIX.length + 1))).toEqual(["main.yaml", "include/a.yaml", "include/b.yaml"]);
  });
  it("a pattern matching nothing is an error naming it", () => {
    const p = write("inc-missing.yaml", "gossfile:\n  nothing-*.yaml: {}\n");
    expect(() => loadGossfile(p, noData)).toThrow(/gossfile\.nothing-\*\.yaml: no matched files were found/);
  });
  it("an include loop stops with an error naming the file, the include and the loop", () => {
    const p = write("loop.yaml", "gossfile:\n  loop.yaml: {}\n");
    expect(() => loadGossfile(p, noData)).toThrow(new RegExp(`^${p}: gossfile\\.loop\\.yaml: includes ${p} again.*an include loop$`));
    const a = write("loop-a.yaml", "gossfile:\n  loop-b.yaml: {}\n");
    write("loop-b.yaml", "gossfile:\n  x: {file: loop-a.yaml}\n");
    expect(() => loadGossfile(a, noData)).toThrow(/loop-b\.yaml: gossfile\.x: includes .*loop-a\.yaml again, which is already being read \(.*loop-a\.yaml → .*loop-b\.yaml → .*loop-a\.yaml\)/);
  });
});

describe("bad gossfiles: exit 2 naming the file and the field", () => {
  const code2 = (f: () => unknown, re: RegExp) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(re);
  };

  it("an include that leaves the gossfile's directory (.., an absolute path, a symlink) is refused", () => {
    const dir = tempDir("vmkiln-goss-esc-");
    mkdirSync(join(dir, "checks"));
    writeFileSync(join(dir, "outside.yaml"), "file:\n  /etc:\n    exists: true\n");
    const main = join(dir, "checks", "main.yaml");
    writeFileSync(main, "gossfile:\n  ../outside.yaml: {}\n");
    code2(() => loadGossfile(main, noData), new RegExp(`^${main}: gossfile\\.\\.\\./outside\\.yaml: .*outside\\.yaml is outside ${join(dir, "checks")}`));
    writeFileSync(main, "gossfile:\n  x: {file: /etc/passwd}\n");
    code2(() => loadGossfile(main, noData), /main\.yaml: gossfile\.x: \/etc\/passwd is outside/);
    symlinkSync(join(dir, "outside.yaml"), join(dir, "checks", "link.yaml"));
    writeFileSync(main, "gossfile:\n  link.yaml: {}\n");
    code2(() => loadGossfile(main, noData), /main\.yaml: gossfile\.link\.yaml: .*link\.yaml is outside/);
    // Inside the directory (a subdirectory too) is fine.
    mkdirSync(join(dir, "checks", "sub"));
    writeFileSync(join(dir, "checks", "sub", "in.yaml"), "file:\n  /etc:\n    exists: true\n");
    writeFileSync(main, "gossfile:\n  sub/*.yaml: {}\n");
    expect(loadGossfile(main, noData).resources.map((r) => r.id)).toEqual(["/etc"]);
  });

  it("a gossfile or vars file larger than 4 MiB is refused before it is read", () => {
    const big = write("big.yaml", "# " + "x".repeat(MAX_GOSSFILE_BYTES) + "\n");
    code2(() => loadGossfile(big, noData), new RegExp(`^${big}: \\d+ bytes; vmkiln reads gossfiles .* up to ${MAX_GOSSFILE_BYTES} bytes$`));
    code2(() => readVarsFile(big), /^--vars .*big\.yaml: \d+ bytes/);
    const inc = write("inc-big.yaml", "gossfile:\n  big.yaml: {}\n");
    code2(() => loadGossfile(inc, noData), /inc-big\.yaml: gossfile\.big\.yaml: .*big\.yaml: \d+ bytes/);
  });

  it("a template that renders to more than 16 MiB stops (nested ranges)", () => {
    const vars = { a: Array.from({ length: 3000 }, (_, i) => i) };
    const p = write("explode.yaml", "{{ range .Vars.a }}{{ range $.Vars.a }}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{{ end }}{{ end }}\n");
    code2(() => loadGossfile(p, { Vars: vars, Env: {} }), /explode\.yaml: template: the rendered gossfile is larger than/);
  });

  it("a literal of the wrong type for the system value is refused, naming the key", () => {
    const cases: Array<[string, RegExp]> = [
      ['file:\n  /etc/x:\n    exists: "yes"\n', /: file\.\/etc\/x\.exists: expected true or false \(or a matcher\), got "yes"$/],
      ["file:\n  /etc/x:\n    exists: true\n    mode: 0644\n", /: file\.\/etc\/x\.mode: expected a quoted string such as "0644" \(or a matcher\), got 644$/],
      ["command:\n  true:\n    exit-status: [0]\n", /: command\.true\.exit-status: expected a whole number \(or a matcher\), got \[0\]$/],
      ["port:\n  tcp:22:\n    listening: 1\n", /: port\.tcp:22\.listening: expected true or false/],
      ["http:\n  http://x/:\n    status: \"200\"\n", /: http\.http:\/\/x\/\.status: expected a whole number/],
      ["service:\n  ssh:\n    running: yes please\n", /: service\.ssh\.running: expected true or false/],
      ["user:\n  u:\n    exists: true\n    shell: 5\n", /: user\.u\.shell: expected a string/],
      ["file: [1, 2]\n", /: file: expected a mapping of resources$/],
      ["- a\n", /: expected a mapping of resource types at the top level$/],
      ["bogus:\n  a: {}\n", /: bogus: unknown resource type/],
      ["file:\n  /x:\n    exists: true\n    mdoe: x\n", /: file\.\/x\.mdoe: unknown attribute for a file resource/],
      ["gossfile: [a.yaml]\n", /: gossfile: expected a mapping of files to include$/],
      ["gossfile:\n  x: {skip: maybe}\n", /: gossfile\.x\.skip: expected true or false$/],
      ["port:\n  tcp:22:\n    listening: {gt: [1]}\n", /: port\.tcp:22\.listening\.gt: gt: expected a number, got \[1\]$/],
    ];
    for (const [text, re] of cases) {
      const p = write("bad.yaml", text);
      code2(() => {
        const g = loadGossfile(p, noData);
        for (const r of g.resources) for (const e of r.expect) compileFor(e.value, e.prop.kind === "reader", `${r.file}: ${r.def.type}.${r.id}.${e.prop.key}`);
      }, new RegExp(`^${p}` + re.source.replace(/^\^/, "")));
    }
  });
});

describe("every resource type's documented attributes load (docs: Available tests)", () => {
  it("reads the docs' examples of the 14 types vmkiln evaluates", () => {
    const p = write("all.yaml", `
addr:
  tcp://ip-address-or-domain-name:80:
    reachable: true
    timeout: 500
    local-address: 127.0.0.1
command:
  'go version':
    exit-status: 0
    exec: "go version"
    stdout: [go version go1.6 linux/amd64]
    stderr: ""
    timeout: 10000
    skip: false
    retry_count: 1
    retry_delay: 500ms
dns:
  localhost:
    resolvable: true
    addrs: {consist-of: [127.0.0.1]}
    timeout: 500
file:
  /etc/passwd:
    exists: true
    mode: "0644"
    size: 2118
    owner: root
    group: root
    filetype: file
    contents: []
    md5: 7c9bb14b3bf178e82c00c2a4398c93cd
    sha256: 7f78ce27859049f725936f7b52c6e25d774012947d915e7b394402cfceb70c4c
  /etc/alternatives/mta:
    exists: true
    filetype: symlink
    linked-to: /usr/sbin/sendmail.sendmail
group:
  nfsnobody:
    exists: true
    gid: 65534
http:
  https://www.google.com:
    status: 200
    allow-insecure: false
    no-follow-redirects: false
    timeout: 1000
    request-headers: ["Content-Type: text/html"]
    headers: []
    body: []
    method: PUT
interface:
  eth0:
    exists: true
    addrs: [172.17.0.2/16]
    mtu: 1500
kernel-param:
  kernel.ostype:
    value: Linux
mount:
  /home:
    exists: true
    opts: [rw, relatime]
    vfs-opts: [rw]
    source: /dev/mapper/fedora-home
    filesystem: xfs
    usage: {lt: 95}
package:
  httpd:
    installed: true
    versions: [2.2.15]
port:
  tcp:22:
    listening: true
    ip: [0.0.0.0]
process:
  chrome:
    running: true
service:
  sshd:
    enabled: true
    running: true
user:
  nfsnobody:
    exists: true
    uid: 65534
    gid: 65534
    groups: [nfsnobody]
    home: /var/lib/nfs
    shell: /sbin/nologin
matching:
  has_substr:
    content: some string
    matches: {match-regexp: some str}
`);
    const g = loadGossfile(p, noData);
    expect(new Set(g.resources.map((r) => r.def.type)).size).toBe(14);
    // contents: [] asserts nothing (docs warning): not checked, and a warning says so
    expect(g.resources.find((r) => r.id === "/etc/passwd")!.expect.map((e) => e.prop.key)).not.toContain("contents");
    expect(g.warnings.some((w) => /contents is an empty list, which asserts nothing/.test(w))).toBe(true);
    expect(g.resources.find((r) => r.id === "go version")!.options.retry_delay).toBe(500);
    expect(g.matching).toHaveLength(1);
  });

  it("an unknown or unsupported key is exit 2 naming the key, never silently passed", () => {
    const cases: Array<[string, RegExp]> = [
      ["file:\n  /x:\n    exists: true\n    moed: '0644'\n", /file\.\/x\.moed: unknown attribute for a file resource/],
      ["services:\n  ssh: {running: true}\n", /services: unknown resource type/],
      ["dns:\n  example.com:\n    resolvable: true\n    server: 8.8.8.8\n", /dns\.example\.com\.server: not supported by vmkiln/],
      ["service:\n  ssh:\n    runlevels: ['3']\n", /service\.ssh\.runlevels: not supported by vmkiln/],
      ["port:\n  tcp:22:\n    ip: [0.0.0.0]\n", /port\.tcp:22: missing required attribute listening/],
      ["command:\n  true:\n    exit-status: zero\n", /command\.true\.exit-status: expected an integer, got "zero"/],
      ["command:\n  true:\n    exit-status: 0\n    timeout: 1s\n", /command\.true\.timeout: expected a whole number/],
      ["file:\n  /x:\n    exists: true\n    skip: yes please\n", /file\.\/x\.skip: expected true or false/],
      ["file: [a, b]\n", /file: expected a mapping of resources/],
      ["file:\n  /x: {exists: true\n", /not valid YAML/],
      ["gossfile:\n  x.yaml: {fiel: y}\n", /gossfile\.x\.yaml\.fiel: unknown attribute for a gossfile include/],
    ];
    for (const [text, re] of cases) {
      const p = write(`bad-${Math.random().toString(36).slice(2)}.yaml`, text);
      let err: unknown;
      try {
        loadGossfile(p, noData);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(UserError);
      expect((err as UserError).exitCode).toBe(2);
      expect((err as Error).message, text).toMatch(re);
      expect((err as Error).message).toContain(p); // names the file
    }
  });
});
