// Fuzz target: the OVF descriptor parser (src/artifact/xml-tree.ts + ovf-parse.ts) and the rules that
// read its result (ovf-rules.ts, package-check.ts). Descriptors come from untrusted OVAs:
//  - mutations of real descriptors (vmkiln's own buildOvf, a VirtualBox OVF 2.0 export) and random
//    text either parse or fail with one of the parser's UserError codes, and the rules never throw;
//  - random well-formed documents parse to the same tree xml2js (which drives the same sax parser,
//    and was the parser before) builds: the bounded parser changed memory, not meaning.
// Bugs found here become named tests beside the code's own tests.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseStringPromise } from "xml2js";
import { UserError } from "../../../src/errors.js";
import { buildOvf } from "../../../src/artifact/ovf.js";
import { parseOvf } from "../../../src/artifact/ovf-parse.js";
import { checkOvfRules } from "../../../src/artifact/ovf-rules.js";
import { checkPackage } from "../../../src/artifact/package-check.js";
import { XML_LIMITS, parseXmlTree, type XNode } from "../../../src/artifact/xml-tree.js";
import { MAX_OVF_BYTES } from "../../../src/artifact/ovf-limits.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { mutatedText } from "./mutate.js";

const RUNS = 600;
/** Each inflated case parses up to 8 MiB: a small budget, at most 300 cases in a long run. */
const INFLATE_RUNS = 12;
const inflateParams = { ...fuzzParams(INFLATE_RUNS), numRuns: Math.min(fuzzParams(INFLATE_RUNS).numRuns ?? INFLATE_RUNS, 300) };
const CODES = new Set(["OVF_MALFORMED", "OVF_NAMESPACE_UNDECLARED", "OVF_TOO_COMPLEX"]);

const VBOX = readFileSync(fileURLToPath(new URL("../../fixtures/ova/virtualbox-ovf20.ovf", import.meta.url)), "utf8").replace("@CAPACITY@", "33554432");
const OURS = buildOvf({ name: "fuzz", cpus: 2, memoryMiB: 1024, firmware: "efi", osType: "debian12", disks: [{ fileName: "fuzz-disk1.vmdk", fileSize: 4096, capacityBytes: 1 << 26 }] });

/** parseOvf must resolve, or reject with a UserError of a known code; the rules must not throw on what it returns. */
async function parsesOrRefuses(xml: string): Promise<void> {
  let ovf;
  try {
    ovf = await parseOvf(xml);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect(CODES.has((err as UserError).code), (err as Error).message).toBe(true);
    return;
  }
  checkOvfRules(ovf, { fileSizes: new Map([["fuzz-disk1.vmdk", 4096]]), member: "x.ovf" });
  await checkPackage({ ovfName: "x.ovf", ovfText: xml, files: [{ name: "x.ovf", size: xml.length, digests: {} }], mfName: "x.mf", mfText: "SHA256(x.ovf)= 00\n" });
}

describe("fuzz: OVF descriptor parser", () => {
  it(
    "mutated real descriptors (vmkiln's, VirtualBox OVF 2.0) parse or are refused with a known code",
    async () => {
      await fc.assert(fc.asyncProperty(fc.oneof(mutatedText(OURS), mutatedText(VBOX)), parsesOrRefuses), fuzzParams(RUNS));
    },
    fuzzTimeoutMs(RUNS),
  );

  it(
    "random text parses or is refused with a known code",
    async () => {
      await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), fc.string({ unit: fc.constantFrom("<", ">", "/", "a", "=", '"', " ", ":", "x", "&", ";"), maxLength: 200 })), parsesOrRefuses), fuzzParams(RUNS));
    },
    fuzzTimeoutMs(RUNS),
  );

  it(
    "inflated descriptors (a slice repeated up to the size cap): refused or parsed within the caps, in bounded time",
    async () => {
      const inflated = fc
        .tuple(fc.constantFrom(OURS, VBOX), fc.nat(), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1_000, max: 2_000_000 }))
        .map(([base, at, len, times]) => {
          const start = at % base.length;
          const slice = base.slice(start, start + len);
          const reps = Math.min(times, Math.floor(MAX_OVF_BYTES / Math.max(1, slice.length)));
          return base.slice(0, start) + slice.repeat(reps) + base.slice(start);
        });
      await fc.assert(
        fc.asyncProperty(inflated, async (xml) => {
          const started = Date.now();
          try {
            const root = parseXmlTree(xml);
            let count = 0;
            const walk = (x: XNode): void => {
              count++;
              x.children.forEach(walk);
            };
            walk(root);
            expect(count).toBeLessThanOrEqual(XML_LIMITS.elements);
          } catch (err) {
            expect(err).toBeInstanceOf(UserError);
            expect(CODES.has((err as UserError).code)).toBe(true);
          }
          expect(Date.now() - started).toBeLessThan(10_000);
        }),
        inflateParams,
      );
    },
    Math.max(30_000, (inflateParams.numRuns ?? INFLATE_RUNS) * 4_000),
  );

  it(
    "random well-formed documents: the same tree xml2js builds",
    async () => {
      await fc.assert(
        fc.asyncProperty(xmlDocument, async (doc) => {
          expect(parseXmlTree(doc)).toEqual(await xml2jsTree(doc));
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS),
  );
});

// ---------------------------------------------------------------------------------------------
// Random namespaced documents, and the tree the xml2js-based parser built from them.

const NAMESPACES: Array<[string, string]> = [
  ["ovf", "http://schemas.dmtf.org/ovf/envelope/1"],
  ["rasd", "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"],
  ["vmw", "http://www.vmware.com/schema/ovf"],
];
const localName = fc.constantFrom("Envelope", "References", "File", "Item", "a", "b-c", "d.e", "_f");
const prefix = fc.constantFrom("", "", "ovf", "rasd", "vmw");
const textPiece = fc.oneof(
  fc.constantFrom("", " ", "\n  ", "x", "&amp;", "&lt;&gt;", "&#233;", "&#x1F600;", "a b", "]]", "<![CDATA[ <raw> & ]]>"),
  fc.string({ unit: fc.constantFrom("a", "z", "0", " ", "\t", "é", "-"), maxLength: 8 }),
);
interface GenElement {
  prefix: string;
  local: string;
  attrs: Array<{ prefix: string; local: string; value: string }>;
  content: Array<string | GenElement>;
}
const element: fc.Memo<GenElement> = fc.memo((depth) =>
  fc.record({
    prefix,
    local: localName,
    attrs: fc.uniqueArray(fc.record({ prefix, local: fc.constantFrom("id", "href", "size", "required", "x"), value: fc.string({ unit: fc.constantFrom("a", "1", " ", "&amp;", "&quot;", "é", ">"), maxLength: 6 }) }), { maxLength: 3, selector: (a) => `${a.prefix}:${a.local}` }),
    content: depth <= 1 ? fc.array(textPiece, { maxLength: 2 }) : fc.array(fc.oneof(textPiece, element(depth - 1)), { maxLength: 4 }),
  }),
);
const xmlDocument = element(4).map((root) => {
  const decl = NAMESPACES.map(([p, uri]) => ` xmlns:${p}="${uri}"`).join("") + ` xmlns="${NAMESPACES[0]![1]}"`;
  const render = (e: GenElement, top: boolean): string => {
    const name = e.prefix ? `${e.prefix}:${e.local}` : e.local;
    const attrs = e.attrs.map((a) => ` ${a.prefix ? `${a.prefix}:` : ""}${a.local}="${a.value}"`).join("");
    const body = e.content.map((c) => (typeof c === "string" ? c : render(c, false))).join("");
    return `<${name}${top ? decl : ""}${attrs}>${body}</${name}>`;
  };
  return `<?xml version="1.0"?>\n${render(root, true)}`;
});

type RawNode = {
  $?: Record<string, { name: string; value: string; local: string; uri: string }>;
  $ns?: { uri: string; local: string };
  $$?: RawNode[];
  "#name"?: string;
  _?: string;
};

/** The tree the descriptor parser built with xml2js before it was bounded (ovf-parse.ts at 733969e). */
async function xml2jsTree(xml: string): Promise<XNode> {
  const doc = (await parseStringPromise(xml, { xmlns: true, explicitChildren: true, preserveChildrenOrder: true, explicitRoot: true, strict: true })) as Record<string, RawNode>;
  const [name, raw] = Object.entries(doc)[0]!;
  const toNode = (r: RawNode, n: string): XNode => ({
    uri: r.$ns?.uri ?? "",
    local: r.$ns?.local ?? n,
    qname: r["#name"] ?? n,
    attrs: Object.values(r.$ ?? {}).map((a) => ({ uri: a.uri, local: a.local, qname: a.name, value: a.value })),
    text: typeof r._ === "string" ? r._ : "",
    children: (r.$$ ?? []).map((c) => toNode(c, c["#name"] ?? "")),
  });
  return toNode(raw, name);
}
