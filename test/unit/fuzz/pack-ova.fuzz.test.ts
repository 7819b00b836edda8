// Fuzz target: `vmkiln pack-ova` on hostile export directories (src/artifact/pack-ova.ts, ova.ts).
// Each case builds a directory from random choices: the OVF's hrefs ("..", absolute paths, names
// with "/", empty, links), what sits at each name (a file, a symlink out of the directory or within
// it, a dangling link, a directory), the manifest (none, right, wrong, SHA1, a link out, junk), and
// where the OVA goes (default, a new file, an existing file, a directory, the OVF itself, a disk, a
// symlink to a file outside, a missing directory), with or without --force. Whatever happens:
//  - the exit code is 0, 1 or 2, never an internal error or a stack trace;
//  - nothing outside the directory is read: the secret's marker is in no file pack-ova wrote;
//  - nothing outside is written: the secret and the victim keep their bytes; inputs are unchanged;
//  - no temp file is left behind.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { cli, tmp } from "../artifact/helpers.js";

const RUNS = 80;
const t = tmp("vmkiln-fuzz-pack-");
afterAll(() => t.cleanup());
const FIXTURE = fileURLToPath(new URL("../../fixtures/ova/virtualbox-ovf20.ovf", import.meta.url));
const VBOX = readFileSync(FIXTURE, "utf8").replace("@CAPACITY@", String(1 << 26));
const sha = (algo: string, d: Buffer | string) => createHash(algo).update(d).digest("hex");

const NAMES = ["disk.vmdk", "disk2.vmdk", "link-out.vmdk", "link-in.vmdk", "dangling.vmdk", "dir.vmdk"] as const;
// Weighted so that about half the cases are packable and the rest break one thing or several.
const href = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<string>(...NAMES) },
  { weight: 1, arbitrary: fc.constantFrom("../secret.bin", "@SECRET@", "sub/disk.vmdk", "", ".", "..", "a\\b", "x".repeat(120), "missing.vmdk") },
);
const atName = fc.oneof({ weight: 5, arbitrary: fc.constant("file") }, { weight: 3, arbitrary: fc.constantFrom("link-out", "link-in", "dangling", "dir", "none") });
const manifest = fc.oneof({ weight: 4, arbitrary: fc.constantFrom("none", "right") }, { weight: 2, arbitrary: fc.constantFrom("wrong", "sha1", "link-out", "junk") });
const output = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("default", "new", "existing") },
  { weight: 3, arbitrary: fc.constantFrom("directory", "the-ovf", "the-mf", "a-disk", "link-to-victim", "missing-dir", "dotdot") },
);

const scenario = fc.record({
  hrefs: fc.uniqueArray(href, { minLength: 1, maxLength: 3 }),
  at: fc.tuple(...NAMES.map(() => atName)),
  manifest,
  output,
  force: fc.boolean(),
  byFile: fc.boolean(),
});

let n = 0;
const exits: Record<number, number> = {};
afterAll(() => console.log(`pack-ova fuzz: ${n} cases, exit codes ${JSON.stringify(exits)}`));

describe("fuzz: pack-ova on hostile directories", () => {
  it(
    "exit 0, 1 or 2; reads nothing outside, writes nothing outside, changes no input, leaves no temp file",
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          const root = join(t.dir, `case-${++n}`);
          const dir = join(root, "export");
          mkdirSync(dir, { recursive: true });
          const marker = `SECRET-${randomBytes(8).toString("hex")}`;
          const secret = join(root, "secret.bin");
          writeFileSync(secret, marker);
          const victim = join(root, "victim.txt");
          writeFileSync(victim, "victim bytes");

          // The directory's contents.
          NAMES.forEach((name, i) => {
            const p = join(dir, name);
            switch (s.at[i]) {
              case "file":
                writeFileSync(p, `inside ${name} `.repeat(50));
                break;
              case "link-out":
                symlinkSync(secret, p);
                break;
              case "link-in":
                mkdirSync(join(dir, "real"), { recursive: true });
                writeFileSync(join(dir, "real", name), `real ${name}`);
                symlinkSync(join("real", name), p);
                break;
              case "dangling":
                symlinkSync(join(root, "nothing-here"), p);
                break;
              case "dir":
                mkdirSync(p);
                break;
            }
          });
          const refs = s.hrefs.map((h, i) => `<File ovf:id="file${i}" ovf:href="${(h === "@SECRET@" ? secret : h).replace(/&/g, "&amp;").replace(/"/g, "&quot;")}"/>`).join("");
          const ovfText = VBOX.replace(/<References>[\s\S]*?<\/References>/, `<References>${refs}</References>`);
          const ovf = join(dir, "tiny.ovf");
          writeFileSync(ovf, ovfText);
          const mfPath = join(dir, "tiny.mf");
          const files = s.hrefs.filter((h) => (NAMES as readonly string[]).includes(h));
          const digestOf = (name: string, algo: string) => {
            try {
              return sha(algo, readFileSync(join(dir, name)));
            } catch {
              return "0".repeat(algo === "sha1" ? 40 : 64);
            }
          };
          if (s.manifest === "right") writeFileSync(mfPath, [`SHA256 (tiny.ovf) = ${sha("sha256", ovfText)}`, ...files.map((f) => `SHA256 (${f}) = ${digestOf(f, "sha256")}`)].join("\n") + "\n");
          if (s.manifest === "wrong") writeFileSync(mfPath, files.map((f) => `SHA256(${f})= ${"1".repeat(64)}`).join("\n") + "\n");
          if (s.manifest === "sha1") writeFileSync(mfPath, files.map((f) => `SHA1 (${f}) = ${digestOf(f, "sha1")}`).join("\n") + "\n");
          if (s.manifest === "link-out") symlinkSync(secret, mfPath);
          if (s.manifest === "junk") writeFileSync(mfPath, "not a manifest\n");

          let out: string | undefined;
          switch (s.output) {
            case "new":
              out = join(root, "out.ova");
              break;
            case "existing":
              out = join(root, "existing.ova");
              writeFileSync(out, "an existing file");
              break;
            case "directory":
              out = join(root, "a-dir");
              mkdirSync(out);
              break;
            case "the-ovf":
              out = ovf;
              break;
            case "the-mf":
              out = mfPath;
              break;
            case "a-disk":
              out = join(dir, "disk.vmdk");
              break;
            case "link-to-victim":
              out = join(root, "link.ova");
              symlinkSync(victim, out);
              break;
            case "missing-dir":
              out = join(root, "no", "such", "x.ova");
              break;
            case "dotdot":
              out = join(dir, "..", "up.ova");
              break;
          }

          // Inputs before: every regular file inside the directory.
          const snapshot = () => {
            const m = new Map<string, string>();
            const walk = (d: string) => {
              for (const e of readdirSync(d)) {
                const p = join(d, e);
                const l = lstatSync(p);
                if (l.isDirectory()) walk(p);
                else if (l.isFile()) m.set(relative(root, p), sha("sha256", readFileSync(p)));
              }
            };
            walk(dir);
            return m;
          };
          const before = snapshot();

          const args = ["pack-ova", s.byFile ? ovf : dir, ...(out !== undefined ? ["-o", out] : []), ...(s.force ? ["--force"] : [])];
          const r = await cli(args);
          exits[r.code] = (exits[r.code] ?? 0) + 1;
          expect([0, 1, 2], `exit ${r.code}: ${r.stderr}`).toContain(r.code);
          expect(r.stderr).not.toMatch(/internal error|\n\s+at /);

          expect(readFileSync(secret, "utf8")).toBe(marker);
          expect(readFileSync(victim, "utf8")).toBe("victim bytes");
          // Inputs (the OVF, its manifest, the files it references) keep their bytes, whatever -o and
          // --force say; any other file only when it is the -o named with --force.
          const after = snapshot();
          const inputs = new Set(["tiny.ovf", "tiny.mf", ...s.hrefs].map((f) => relative(root, join(dir, f))));
          const replaceable = out !== undefined && s.force && !inputs.has(relative(root, out)) ? relative(root, out) : undefined;
          for (const [p, h] of before) if (p !== replaceable) expect(after.get(p), `${p} changed`).toBe(h);
          // Nothing it wrote holds the secret; no temp file remains.
          const written: string[] = [];
          const walkAll = (d: string) => {
            for (const e of readdirSync(d)) {
              const p = join(d, e);
              const l = lstatSync(p);
              if (l.isDirectory()) walkAll(p);
              else if (l.isFile() && p !== secret) written.push(p);
            }
          };
          walkAll(root);
          for (const p of written) expect(readFileSync(p).includes(marker), `${p} holds bytes from outside the directory`).toBe(false);
          expect(written.filter((p) => p.endsWith(".partial"))).toEqual([]);
          if (r.code === 0 && s.output === "existing" && !s.force) expect.fail("replaced an existing -o file without --force");
          if (r.code === 0) expect(existsSync(out ?? join(dir, "tiny.ova"))).toBe(true);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 80),
  );
});
