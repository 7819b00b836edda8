// The part of sax's API xml-tree.ts uses (sax ships no types; @types/sax would be another
// dependency for a dozen lines). Shapes as sax 1.6 lib/sax.js builds them in xmlns mode.
declare module "sax" {
  interface QualifiedAttribute {
    name: string;
    value: string;
    prefix: string;
    local: string;
    uri: string;
  }
  interface QualifiedTag {
    name: string;
    prefix: string;
    local: string;
    uri: string;
    attributes: Record<string, QualifiedAttribute>;
    isSelfClosing: boolean;
  }
  interface SAXParser {
    onerror: (err: Error) => void;
    onopentag: (tag: QualifiedTag) => void;
    onclosetag: (name: string) => void;
    ontext: (text: string) => void;
    oncdata: (text: string) => void;
    /** Attributes of the tag being read, before the tag opens ([name, value] pairs). */
    attribList: Array<[string, string]>;
    write(chunk: string): SAXParser;
    close(): SAXParser;
  }
  function parser(strict: boolean, opt?: { xmlns?: boolean; position?: boolean }): SAXParser;
  const sax: { parser: typeof parser };
  export default sax;
  export type { QualifiedTag, QualifiedAttribute, SAXParser };
}
