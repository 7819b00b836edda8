// Mutation operators shared by the fuzz targets: fast-check arbitraries that turn a real input (a
// descriptor's text, an OVA's bytes) into a nearby broken one. Small edits at random places find
// more parser bugs than random bytes, which a parser rejects at the first character.
import fc from "fast-check";

/** Characters that matter to XML and to OVF, and a few that do not. */
const XML_BITS = ["<", ">", "/", "&", ";", '"', "'", "=", ":", "!", "?", "[", "]", "-", " ", "\n", "\0", "a", "ovf:", "xmlns", "&amp;", "&#0;", "&#x110000;", "]]>", "<!--", "<![CDATA[", "<!DOCTYPE x [", "\uFEFF", "\uD800", "é"];

export type TextEdit =
  | { op: "replace"; at: number; len: number; with: string }
  | { op: "duplicate"; at: number; len: number; times: number }
  | { op: "truncate"; at: number };

const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), len: fc.nat({ max: 40 }), with: fc.oneof(fc.constantFrom(...XML_BITS), fc.string({ maxLength: 12 })) }),
  fc.record({ op: fc.constant("duplicate" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 400 }), times: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  let t = text;
  for (const e of edits) {
    const at = t.length === 0 ? 0 : e.at % (t.length + 1);
    if (e.op === "replace") t = t.slice(0, at) + e.with + t.slice(at + e.len);
    else if (e.op === "duplicate") t = t.slice(0, at) + t.slice(at, at + e.len).repeat(e.times + 1) + t.slice(at + e.len);
    else t = t.slice(0, at);
  }
  return t;
}

/** One to four edits of `base`. */
export function mutatedText(base: string): fc.Arbitrary<string> {
  return fc.array(textEdit, { minLength: 1, maxLength: 4 }).map((edits) => applyTextEdits(base, edits));
}

export type ByteEdit =
  | { op: "set"; at: number; value: number }
  | { op: "write"; at: number; bytes: Uint8Array }
  | { op: "copyBlock"; from: number; to: number }
  | { op: "truncate"; at: number }
  | { op: "append"; bytes: Uint8Array };

/** Edits aimed at a tar: single bytes anywhere, strings into header fields, whole 512-byte blocks moved. */
const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      at: fc.nat(),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 16 }),
        // Header fields: names with "..", "/", links, huge or negative sizes, type flags, magic.
        fc.constantFrom("../evil", "/etc/passwd", "a/b", "77777777777", "\x80\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00", "\xff\xff\xff\xff", "2", "1", "5", "L", "x", "g", "ustar  \0", "ustar\x0000").map((s) => Uint8Array.from(Buffer.from(s, "latin1"))),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("copyBlock" as const), from: fc.nat(), to: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("append" as const), bytes: fc.uint8Array({ maxLength: 1100 }) }) },
);

export function applyByteEdits(data: Buffer, edits: readonly ByteEdit[]): Buffer {
  let b = Buffer.from(data);
  for (const e of edits) {
    if (b.length === 0 && e.op !== "append") continue;
    switch (e.op) {
      case "set":
        b[e.at % b.length] = e.value;
        break;
      case "write": {
        // Header fields sit at fixed offsets: aim at the start of a header block half of the time.
        const at = e.at % 2 === 0 ? (Math.floor(e.at / 2) % Math.max(1, Math.floor(b.length / 512))) * 512 + (e.at % 300) : e.at % b.length;
        Buffer.from(e.bytes).copy(b, Math.min(at, b.length - 1));
        break;
      }
      case "copyBlock": {
        const blocks = Math.floor(b.length / 512);
        if (blocks === 0) break;
        b.copy(b, (e.to % blocks) * 512, (e.from % blocks) * 512, (e.from % blocks) * 512 + 512);
        break;
      }
      case "truncate":
        b = b.subarray(0, e.at % (b.length + 1));
        break;
      case "append":
        b = Buffer.concat([b, Buffer.from(e.bytes)]);
        break;
    }
  }
  return b;
}

export function mutatedBytes(base: Buffer): fc.Arbitrary<Buffer> {
  return fc.array(byteEdit, { minLength: 1, maxLength: 5 }).map((edits) => applyByteEdits(base, edits));
}
