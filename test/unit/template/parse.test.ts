// Reading and parsing template and var files: bounds and errors (issue 12). Every failure is a
// UserError (exit 2) naming the file and, for syntax, line:col, never the text around the error.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TemplateError, UserError } from "../../../src/errors.js";
import { checkJson } from "../../../src/template/json.js";
import { loadTemplate } from "../../../src/template/load.js";
import { MAX_DEPTH, MAX_INPUT_BYTES } from "../../../src/template/parse.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-parse-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `name: t\nsource: { cloud_image: { path: ${path.join(GOOD, "images/fixture.qcow2")}, checksum: none } }\ndrivers: { qemu: {} }\n`;

function file(name: string, text: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function rejection(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(2);
  return err as UserError;
}

describe("JSON", () => {
  it("rejects a key given twice, at the second one's line:col (JSON.parse kept the last silently)", async () => {
    const t = file("dup.json", '{\n  "name": "a",\n  "name": "b"\n}');
    const err = await rejection(loadTemplate(t, { env: {} }));
    expect(err.message).toBe(`${t}: JSON syntax error at line 3:3: duplicate key "name"`);
  });

  it("rejects duplicate keys in nested objects too, and in var-files", async () => {
    const t = file("dup-nested.json", '{"name":"a","drivers":{"qemu":{"cpus":1,"cpus":2}}}');
    expect((await rejection(loadTemplate(t, { env: {} }))).message).toMatch(/line 1:41: duplicate key "cpus"/);
    const v = file("dup-vars.json", '{"a": 1, "a": 2}');
    expect((await rejection(loadTemplate(file("ok.yaml", VALID), { env: {}, varFiles: [v] }))).message).toMatch(/dup-vars\.json: JSON syntax error at line 1:10: duplicate key "a"/);
  });

  it("a syntax error in a var-file names line:col and never quotes the text around it (it printed the secret)", async () => {
    const secret = "hunter2-very-secret";
    // V8's message for this one is `Unexpected token 'x', ..."${secret}" x}" is not valid JSON`.
    const v = file("vars.json", `{"pw": "${secret}" x}`);
    const err = await rejection(loadTemplate(file("ok2.yaml", VALID), { env: {}, varFiles: [v] }));
    expect(err.message).toBe(`${v}: JSON syntax error at line 1:30: expected ',' or '}'`);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain("hunter");
  });

  it.each([
    ["", "unexpected end of file"],
    ["{", "unexpected end of file"],
    ['{"a" 1}', "expected ':' after a key"],
    ['{"a": 1,}', "expected a key in double quotes"],
    ["[1,]", "expected a value"],
    ["[1 2]", "expected ',' or ']'"],
    ['"a\\x"', "invalid escape in a string"],
    ['"a\\u12"', "invalid \\u escape in a string"],
    ['"a\nb"', "control character in a string (write it as an escape such as \\n)"],
    ['"abc', "unterminated string"],
    ["01", "unexpected content after the value"],
    ["-", "invalid number"],
    ["nul", "expected a value"],
    ["{} {}", "unexpected content after the value"],
  ])("checkJson(%j): %s", (text, reason) => {
    expect(checkJson(text, MAX_DEPTH)?.reason).toBe(reason);
  });

  it.each(["{}", "[]", '{"a":[1,-2.5e3,true,false,null,"\\u00e9\\n"],"b":{}}', ' \n\t{"a" : 1 }\r\n', '"x"', "0"])("checkJson accepts %j as JSON.parse does", (text) => {
    expect(checkJson(text, MAX_DEPTH)).toBeUndefined();
    expect(() => JSON.parse(text)).not.toThrow();
  });

  it("rejects nesting deeper than MAX_DEPTH without overflowing the stack (it was an internal error)", async () => {
    const t = file("deep.json", '{"name":' + "[".repeat(100_000) + "]".repeat(100_000) + "}");
    expect((await rejection(loadTemplate(t, { env: {} }))).message).toMatch(/JSON syntax error at line 1:\d+: nested more than 64 levels deep/);
  });

  it("reads a BOM-prefixed JSON file", async () => {
    const spec = await loadTemplate(
      file("bom.json", "\ufeff" + JSON.stringify({ name: "b", source: { cloud_image: { path: path.join(GOOD, "images/fixture.qcow2"), checksum: "none" } }, drivers: { qemu: {} } })),
      { env: {} },
    );
    expect(spec.name).toBe("b");
  });
});

describe("YAML", () => {
  it("an alias bomb is bad input (exit 2), not an internal error", async () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${Array(10).fill(`*${"abcdefghi"[i - 1]}`).join(", ")}]`);
    const err = await rejection(loadTemplate(file("bomb.yaml", levels.join("\n") + "\nname: x\n"), { env: {} }));
    expect(err).toBeInstanceOf(TemplateError);
    expect(err.message).toMatch(/YAML syntax error.*too many alias expansions/);
  });

  it("rejects deep nesting", async () => {
    const err = await rejection(loadTemplate(file("deep.yaml", "name: " + "[".repeat(100_000) + "]".repeat(100_000) + "\n"), { env: {} }));
    expect(err.message).toMatch(/nested more than 64 levels deep/);
    const err2 = await rejection(loadTemplate(file("deep2.yaml", "name: " + "[".repeat(70) + "]".repeat(70) + "\n"), { env: {} }));
    expect(err2.message).toMatch(/nested more than 64 levels deep/);
  });

  it("rejects duplicate keys, also when YAML spells them differently (1 and \"1\")", async () => {
    const err = await rejection(loadTemplate(file("dup.yaml", 'name: a\nvariables:\n  1: x\n  "1": y\n'), { env: {} }));
    expect(err.message).toMatch(/dup\.yaml: YAML syntax error at line 4:3: duplicate key "1"/);
  });

  it("syntax errors are our words and line:col, never the library's excerpt of the text", async () => {
    const err = await rejection(loadTemplate(file("esc.yaml", 'name: "top\\qsecret"\n'), { env: {} }));
    expect(err.message).toBe(`${path.join(dir, "esc.yaml")}: YAML syntax error at line 1:11: invalid escape sequence in a "double-quoted" string`);
    const tag = await rejection(loadTemplate(file("tag.yaml", "name: !s3cret-tag x\n"), { env: {} }));
    expect(tag.message).not.toContain("s3cret");
  });

  it("YAML 1.1 values JSON has no form for (!!binary, !!set) are reported at their path", async () => {
    const err = await rejection(loadTemplate(file("binary.yaml", "%YAML 1.1\n---\nname: x\ncloud_init: { user_data: { blob: !!binary aGVsbG8= } }\n"), { env: {} }));
    expect((err as TemplateError).problems).toEqual([{ path: "cloud_init.user_data.blob", message: "unsupported value (a string, number, boolean, list or mapping is expected)" }]);
  });
});

describe("size", () => {
  it(`rejects a template over ${MAX_INPUT_BYTES} bytes before parsing it`, async () => {
    const t = file("big.yaml", VALID + "#".repeat(MAX_INPUT_BYTES));
    const err = await rejection(loadTemplate(t, { env: {} }));
    expect(err.code).toBe("TEMPLATE_TOO_LARGE");
    expect(err.message).toBe(`${t}: larger than 1 MiB (a template or var-file is a few KiB; put big content in files it names)`);
  });

  it("stops reading a var-file that never ends (/dev/zero) at the limit", async () => {
    const err = await rejection(loadTemplate(file("ok3.yaml", VALID), { env: {}, varFiles: ["/dev/zero"] }));
    expect(err.code).toBe("VAR_FILE_TOO_LARGE");
  });

  it("reads a var-file from a pipe (-var-file <(...))", async () => {
    const fifo = path.join(dir, "vars.fifo");
    execFileSync("mkfifo", [fifo]);
    // A writer in another process: the loader reads var-files synchronously.
    const writer = spawn("sh", ["-c", `printf 'who: piped\\n' > ${fifo}`], { stdio: "ignore" });
    try {
      const spec = await loadTemplate(file("ok4.yaml", VALID + "shutdown: { command: 'echo ${var.who}' }\n"), { env: {}, varFiles: [fifo] });
      expect(spec.shutdown.command).toBe("echo piped");
    } finally {
      writer.kill();
    }
  });

  it("names a directory given as a template", async () => {
    const err = await rejection(loadTemplate(dir, { env: {} }));
    expect(err.code).toBe("TEMPLATE_NOT_FOUND");
    expect(err.message).toMatch(/cannot read: (is a directory|EISDIR)/);
  });
});

// Regression (found by fuzzing, issue 12): `? eout: 10m` makes a mapping the key of a mapping; yaml
// stringified it and printed "Warning: Keys with collection values will be stringified" on stderr,
// even under `validate --json`.
describe("YAML keys that are lists or mappings", () => {
  it("are a syntax problem at their line:col, and yaml prints nothing", async () => {
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const t = file("collection-key.yaml", "name: x\nssh:\n  username: a\n? eout: 10m\n");
      const err = await rejection(loadTemplate(t, { env: {} }));
      expect(err.message).toBe(`${t}: YAML syntax error at line 4:3: a key must be a plain value, not a list or mapping`);
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

// Regression (found by fuzzing, issue 12): a var-file entry with the empty key and a wrong type was
// reported at path "" (no field path at all).
describe("var-file problems", () => {
  it("name the key as a field path, the empty key too", async () => {
    const v = file("empty-key.json", '{"": {"a": 1}, "ok": 1}');
    const err = await rejection(loadTemplate(file("ok5.yaml", VALID), { env: {}, varFiles: [v] }));
    expect((err as TemplateError).problems).toEqual([{ path: '[""]', message: "expected a string, number or boolean" }]);
  });
});
