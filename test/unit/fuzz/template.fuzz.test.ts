// Fuzz target: the template loader (src/template/), in-process for throughput and through the real
// CLI process for what only a process shows (exit code, hangs, stack traces). Inputs: mutations of
// the example templates (fixtures/examples/) and the test fixtures (test/fixtures/templates/: good
// and bad), as trees (a field deleted, retyped, renamed, given a hostile value) and as text (bytes
// inserted or cut, which YAML reads very differently), plus random trees and random text, each
// sometimes with a random -var-file. Properties:
//   - loading returns a spec or throws a UserError (exit 2), never anything else ("internal error");
//   - a TemplateError names a field path for every problem (syntax errors name line:col instead),
//     in our words (no zod or library wording);
//   - each case takes under 1 s; through the CLI: exit 0 or 2, no "internal error", no stack trace,
//     `--json` is JSON, and a kill timer turns a hang into a failure.
// The seed templates are copied to a temp dir so relative paths (scripts, playbooks) still resolve.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TemplateError, UserError } from "../../../src/errors.js";
import { loadTemplate } from "../../../src/template/load.js";
import { ensureBuilt, runCliTimed } from "../../helpers/built-cli.js";
import { REPO } from "../../helpers/cli.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const RUNS = 300;
/** Cases through the CLI process: each costs a Node start-up (0.3–2 s), so far fewer. */
const CLI_RUNS = 4;
const cliRuns = () => (process.env.VMKILN_FUZZ_RUNS ? Math.max(CLI_RUNS, Math.floor(Number(process.env.VMKILN_FUZZ_RUNS) / 50)) : CLI_RUNS);

interface Seed {
  dir: string;
  text: string;
  tree: unknown;
  /** Loads as it is (the examples, the good fixtures): mutations of these reach deeper rules. */
  valid: boolean;
  file: string;
}

let work: string;
let seeds: Seed[] = [];
let env: NodeJS.ProcessEnv;
const stats = { inProcess: { cases: 0, ok: 0, rejected: 0, ms: 0, slowestMs: 0 }, cli: { cases: 0, ok: 0, rejected: 0, ms: 0, slowestMs: 0 } };

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "vmkiln-fuzz-template-"));
  cpSync(path.join(REPO, "fixtures"), path.join(work, "fixtures"), { recursive: true }); // examples name ../kickstart etc.
  cpSync(path.join(REPO, "test/fixtures/templates"), path.join(work, "templates"), { recursive: true });
  const dirs = ["fixtures/examples", "templates/good", "templates/bad", "templates/integration"].map((d) => path.join(work, d));
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((n) => /\.(ya?ml|json)$/.test(n)).sort()) {
      const text = readFileSync(path.join(dir, f), "utf8");
      let tree: unknown;
      try {
        tree = YAML.parse(text);
      } catch {
        tree = undefined; // the syntax-error fixture: a text seed only
      }
      seeds.push({ dir, text, tree, valid: false, file: path.join(dir, f) });
    }
  }
  env = { VMKILN_FIXTURE_IMAGE: path.join(work, "templates/good/images/fixture.qcow2"), VMKILN_TEST_OUTPUT: path.join(work, "out"), HOME: work };
  for (const s of seeds) s.valid = await loadTemplate(s.file, { env }).then(() => true, () => false);
  expect(seeds.filter((s) => s.valid).length).toBeGreaterThanOrEqual(10);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  for (const [target, s] of Object.entries(stats)) {
    if (s.cases === 0) continue;
    console.info(`fuzz template (${target}): ${s.cases} cases (${s.ok} valid, ${s.rejected} rejected with exit 2) in ${Math.round(s.ms)} ms; slowest ${Math.round(s.slowestMs)} ms`);
  }
});

// ---- generators

const TOP_KEYS = ["name", "variables", "sensitive_variables", "source", "drivers", "ssh", "cloud_init", "boot", "http", "install_media", "install", "provision", "generalize", "shutdown", "output"];

/** Values that have broken loaders before or are at a bound. */
const HOSTILE: unknown[] = [
  "", " ", 0, -1, 1e308, -0, 0.5, 2 ** 53, "0", "-1", "1e3", "NaN", "Infinity", true, "true", "yes", null, [], {}, [[]], { "": null },
  "${var.nope}", "${env.NOPE}", "${", "$${", "${name}", "${http.ip}", "}", "{{ .Name }}", "<enterr>", "<wait30d>", "<wait5>",
  "30d", "24d20h31m24s", "1e300", "99999999999999999999T", "0G", "1M", "65T", "9".repeat(400), "a".repeat(5000),
  "../../../../etc/passwd", "/dev/zero", "/", "~", "~/x", "./", "C:\\x", "\u0000", "\u202e", "é", "😀", "\n", "- a", "a: b", "&a", "*a", "!!binary",
  "http://", "https://", "https://u:p@h/x", "file:", "file:/nonexistent", "sha256:", "sha512:" + "0".repeat(128), "none",
  "__proto__", "constructor", "toString",
];

/** YAML punctuation and byte-level damage for text mutations. */
const TEXT_BITS = [":", " ", "-", "- ", "[", "]", "{", "}", ",", "#", "&a ", "*a", "!", "!!", "%", "|", ">", "'", '"', "\\", "\t", "\n", "\r", "\n  ", "---\n", "...", "? ", "<<: *a", "\u0000", "\ufeff", "${", "}}"];

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

type Op = { at: number; kind: "delete" | "replace" | "insert" | "rename"; value: unknown; key: string };
const op: fc.Arbitrary<Op> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("delete", "replace", "insert", "rename"),
  value: anyValue,
  key: fc.oneof(fc.constantFrom(...TOP_KEYS, "cpus", "cpsu", "memory", "disk_size", "inline", "password", "__proto__", ""), fc.string({ maxLength: 10 })),
});

/** Every container and key/index in a tree, in a fixed order, so `at % length` picks one. */
function slots(tree: unknown): Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> {
  const out: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) node.forEach((v, i) => (out.push({ parent: node, key: i }), stack.push(v)));
    else if (node !== null && typeof node === "object")
      for (const [k, v] of Object.entries(node)) {
        out.push({ parent: node as Record<string, unknown>, key: k });
        stack.push(v);
      }
  }
  return out;
}

function mutate(tree: unknown, ops: Op[]): unknown {
  const root = { root: structuredClone(tree) } as Record<string, unknown>;
  for (const o of ops) {
    const all = slots(root);
    const s = all[o.at % all.length]!;
    const { parent, key } = s;
    if (o.kind === "replace" || key === "root") {
      (parent as Record<string | number, unknown>)[key] = structuredClone(o.value);
    } else if (o.kind === "delete") {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
    } else {
      const target = (parent as Record<string | number, unknown>)[key];
      const host = target !== null && typeof target === "object" ? target : parent;
      if (Array.isArray(host)) host.push(structuredClone(o.value));
      else if (o.kind === "insert") Object.defineProperty(host, o.key, { value: structuredClone(o.value), enumerable: true, writable: true, configurable: true });
      else if (!Array.isArray(parent) && typeof key === "string" && key !== o.key) {
        Object.defineProperty(parent, o.key, { value: parent[key], enumerable: true, writable: true, configurable: true });
        delete parent[key];
      }
    }
  }
  return root.root;
}

interface Case {
  seed: number;
  json: boolean;
  text: string;
  vars?: { json: boolean; text: string } | undefined;
}

const serialize = (tree: unknown, json: boolean): string => (json ? JSON.stringify(tree) ?? "null" : YAML.stringify(tree));

// A fifth of the tree cases are the seed unchanged, so the valid path is fuzzed too (with var-files).
const ops = fc.oneof({ weight: 1, arbitrary: fc.constant<Op[]>([]) }, { weight: 4, arbitrary: fc.array(op, { minLength: 1, maxLength: 4 }) });
const treeCase = fc.tuple(fc.nat(), ops, fc.boolean(), fc.boolean()).map(([seed, ops, json, fromValid]): Case => {
  const withTree = seeds.filter((s) => s.tree !== undefined && (!fromValid || s.valid));
  const s = withTree[seed % withTree.length]!;
  return { seed: seeds.indexOf(s), json, text: serialize(mutate(s.tree, ops), json) };
});

const textCase = fc
  .tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 12 }), fc.oneof(fc.constantFrom(...TEXT_BITS), fc.string({ maxLength: 4 }))), { minLength: 1, maxLength: 4 }))
  .map(([seed, edits]): Case => {
    let text = seeds[seed % seeds.length]!.text;
    for (const [at, cut, insert] of edits) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + insert + text.slice(i + cut);
    }
    return { seed: seed % seeds.length, json: false, text };
  });

const randomCase = fc
  .tuple(
    fc.nat(),
    fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.dictionary(fc.constantFrom(...TOP_KEYS, "x"), anyValue, { maxKeys: 6 })),
    fc.boolean(),
  )
  .map(([seed, tree, json]): Case => ({ seed: seed % seeds.length, json, text: serialize(tree, json) }));

const rawTextCase = fc.tuple(fc.nat(), fc.string({ unit: "binary", maxLength: 200 })).map(([seed, text]): Case => ({ seed: seed % seeds.length, json: false, text }));

const varFile = fc.option(
  fc.oneof(
    fc.tuple(fc.dictionary(fc.string({ maxLength: 8 }), anyValue, { maxKeys: 4 }), fc.boolean()).map(([vars, json]) => ({ json, text: serialize(vars, json) })),
    fc.string({ maxLength: 40 }).map((text) => ({ json: false, text })),
    fc.string({ maxLength: 40 }).map((text) => ({ json: true, text })),
  ),
  { nil: undefined, freq: 4 },
);

const fuzzCase = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: treeCase }, { weight: 3, arbitrary: textCase }, { weight: 1, arbitrary: randomCase }, { weight: 1, arbitrary: rawTextCase }),
    varFile,
  )
  .map(([c, vars]): Case => ({ ...c, vars }));

/** Writes the case next to its seed (relative paths resolve as in the original). */
function writeCase(c: Case, tag: string): { template: string; varFile?: string } {
  const dir = seeds[c.seed]!.dir;
  const template = path.join(dir, `fuzz-${tag}.${c.json ? "json" : "yaml"}`);
  writeFileSync(template, c.text);
  if (!c.vars) return { template };
  const varFile = path.join(work, `fuzz-${tag}-vars.${c.vars.json ? "json" : "yaml"}`);
  writeFileSync(varFile, c.vars.text);
  return { template, varFile };
}

const NOT_OUR_WORDS = /Invalid input|received |Unrecognized key|\[object |Maximum call stack|is not valid JSON|Unexpected token/;

function checkRejection(err: unknown): void {
  expect(err, String(err instanceof Error ? err.stack : err)).toBeInstanceOf(UserError);
  const e = err as UserError;
  expect(e.exitCode).toBe(2);
  expect(e.message).not.toMatch(NOT_OUR_WORDS);
  if (e instanceof TemplateError) {
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) {
      expect(p.message.trim(), JSON.stringify(p)).not.toBe("");
      // A field path, or the file-level kinds that have none (they name line:col or the top level).
      if (p.path === "") expect(p.message, JSON.stringify(p)).toMatch(/syntax error|top level|var file must be|nested more than/);
    }
  }
}

const record = (s: (typeof stats)["cli"], ms: number, ok: boolean) => {
  s.cases++;
  s.ms += ms;
  s.slowestMs = Math.max(s.slowestMs, ms);
  if (ok) s.ok++;
  else s.rejected++;
};

describe("template loader (fuzz)", () => {
  it(
    "in-process: a spec or a UserError with field paths, each case under 1 s",
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzCase, async (c) => {
          const { template, varFile } = writeCase(c, "in-process");
          const started = performance.now();
          let ok = true;
          try {
            await loadTemplate(template, { env, varFiles: varFile ? [varFile] : [] });
          } catch (err) {
            ok = false;
            checkRejection(err);
          }
          const ms = performance.now() - started;
          record(stats.inProcess, ms, ok);
          expect(ms).toBeLessThan(1000);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 100),
  );

  it(
    "through the CLI: exit 0 or 2, no internal error, no stack trace, --json is JSON, never a hang",
    async () => {
      await ensureBuilt();
      const runs = cliRuns();
      await fc.assert(
        fc.asyncProperty(fuzzCase, fc.boolean(), async (c, json) => {
          const { template, varFile } = writeCase(c, "cli");
          const args = ["validate", ...(json ? ["--json"] : []), ...(varFile ? ["-var-file", varFile] : []), template];
          const r = await runCliTimed(args, { env: { ...env, VSPHERE_USERNAME: undefined, VSPHERE_PASSWORD: undefined }, timeoutMs: 20_000 });
          record(stats.cli, r.ms, r.code === 0);
          expect(r.killed, `hung: vmkiln ${args.join(" ")}`).toBe(false);
          expect([0, 2], r.stderr).toContain(r.code);
          expect(r.stdout + r.stderr).not.toMatch(/internal error|\n\s+at /);
          expect(r.stderr).not.toMatch(NOT_OUR_WORDS);
          if (json) {
            const out = JSON.parse(r.stdout) as { ok: boolean; problems: unknown[] };
            expect(out.ok).toBe(r.code === 0);
            expect(r.stderr).toBe("");
          } else if (r.code === 2) expect(r.stderr).toMatch(/^vmkiln: error: /);
        }),
        // fuzzParams gives every target VMKILN_FUZZ_RUNS in a long run; a process per case needs fewer.
        { ...fuzzParams(runs), numRuns: runs },
      );
    },
    300_000 + cliRuns() * 20_000,
  );
});
