// Fuzz target: the SHA256SUMS/CHECKSUM parser (src/source/checksum.ts parseSums + findSum). Sums files
// come from mirrors: any text must parse without throwing into well-formed entries only, and a file
// written the way GNU coreutils writes it (text or binary mode, --tag, with its backslash escapes
// for names holding "\" or a newline), mixed with the lines real files carry (PGP armour, comments,
// md5/sha1 entries, CRLF), must give back exactly the entries written. Bugs found here become named
// tests in test/unit/source/checksum.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findSum, parseSums, type SumsEntry } from "../../../src/source/checksum.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const RUNS = 1500;

const hex = (n: number) => fc.array(fc.constantFrom(..."0123456789abcdefABCDEF"), { minLength: n, maxLength: n }).map((a) => a.join(""));
// Names as they occur, plus what breaks naive parsers: spaces (leading and trailing), parentheses,
// " = ", "*", backslashes, newlines, a leading "./", non-ASCII.
const nameChar = fc.constantFrom(..."abcXYZ019._-+~ ()=*\\\n\t/é€");
const fileName = fc
  .array(nameChar, { minLength: 1, maxLength: 24 })
  .map((a) => a.join(""))
  .filter((n) => n.trim() !== "" && !n.startsWith("./") && !n.endsWith("\r") && n !== "." && n !== "..");
const entry = fc.record({
  name: fileName,
  algo: fc.constantFrom<"sha256" | "sha512">("sha256", "sha512"),
  hexText: fc.oneof(hex(64), hex(128)),
  form: fc.constantFrom("text", "binary", "tag", "tag-sha2"),
});

/** What `sha256sum`/`sha512sum` (coreutils 9) print for a name: `\` marks a line whose name is escaped. */
function gnuLine(e: { name: string; algo: "sha256" | "sha512"; hex: string; form: string }): string {
  const escaped = /[\\\n\r]/.test(e.name);
  const name = escaped ? e.name.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r") : e.name;
  const lead = escaped ? "\\" : "";
  const bits = e.algo === "sha256" ? "256" : "512";
  switch (e.form) {
    case "text":
      return `${lead}${e.hex}  ${name}`;
    case "binary":
      return `${lead}${e.hex} *${name}`;
    case "tag":
      return `${lead}SHA${bits} (${name}) = ${e.hex}`;
    default:
      return `${lead}SHA2-${bits} (${name}) = ${e.hex}`; // Fedora's CHECKSUM spelling
  }
}

const noise: fc.Arbitrary<string> = fc.constantFrom(
  "",
  "-----BEGIN PGP SIGNED MESSAGE-----",
  "Hash: SHA256",
  "# Fedora-Cloud-Base 41: 512 bytes",
  `${"c".repeat(32)}  old.md5`,
  `${"d".repeat(40)}  old.sha1`,
  `MD5 (x.img) = ${"e".repeat(32)}`,
  "-----BEGIN PGP SIGNATURE-----",
  "iQIzBAEBCAAdFiEE/abc=",
);

describe("fuzz: parseSums", () => {
  it(
    "any text: never throws, every entry is well-formed",
    () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 400 }), fc.array(fc.oneof(noise, fc.string({ maxLength: 80 }), entry.map((e) => gnuLine({ ...e, hex: e.hexText }))), { maxLength: 12 }).map((l) => l.join("\n"))), (text) => {
          for (const e of parseSums(text)) {
            expect(e.hex).toMatch(e.algo === "sha256" ? /^[0-9a-f]{64}$/ : /^[0-9a-f]{128}$/);
            expect(typeof e.name).toBe("string");
            expect(e.name.length).toBeGreaterThan(0);
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS),
  );

  it(
    "files written like coreutils, among noise lines and in CRLF: exactly the entries written",
    () => {
      fc.assert(
        fc.property(fc.array(entry, { minLength: 1, maxLength: 6 }), fc.array(noise, { maxLength: 6 }), fc.boolean(), (raw, junk, crlf) => {
          // The digest's length decides the algorithm of an untagged line; a tag names it.
          const entries = raw.map((e) => {
            const h = e.form.startsWith("tag") ? e.hexText.slice(0, e.algo === "sha256" ? 64 : 128).padEnd(e.algo === "sha256" ? 64 : 128, "0") : e.hexText;
            return { ...e, hex: h, algo: (h.length === 64 ? "sha256" : "sha512") as "sha256" | "sha512" };
          });
          const lines: string[] = [...junk];
          entries.forEach((e, i) => lines.splice(Math.min(i * 2, lines.length), 0, gnuLine(e)));
          const text = lines.join(crlf ? "\r\n" : "\n") + "\n";
          const want: SumsEntry[] = entries.map((e) => ({ name: e.name, algo: e.algo, hex: e.hex.toLowerCase() }));
          expect(parseSums(text)).toEqual(want);
          for (const e of want) {
            if (want.filter((o) => o.name === e.name).length > 1) continue; // findSum picks among duplicates
            expect(findSum(parseSums(text), e.name)).toEqual(e);
          }
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS),
  );
});
