// A namespace-resolved element tree from untrusted XML, with bounded memory and time: sax (strict,
// xmlns) reads the text in small slices and this builds compact nodes, refusing a document over
// the caps in ovf-limits.ts (elements, attributes, depth, name length) as soon as it crosses one.
//
// Why not xml2js (which drives the same sax parser): it keeps several objects per element and per
// attribute (a 4 MB descriptor of `<a/>` elements took 700 MB and 20 s, a 31 MB one 4.4 GB or an
// out-of-memory crash), and it cannot stop early. Why slices: sax checks a new attribute against
// every earlier one of the same tag (Array.indexOf, quadratic), so the attribute count is checked
// between slices, long before that cost grows. sax never expands entities a DTD declares (no
// billion laughs) and refuses any name, comment or attribute value over 64 KiB (MAX_BUFFER_LENGTH).
import sax, { type QualifiedTag } from "sax";
import { UserError } from "../errors.js";
import { MAX_XML_ATTRIBUTES, MAX_XML_DEPTH, MAX_XML_ELEMENT_ATTRIBUTES, MAX_XML_ELEMENTS, MAX_XML_NAME } from "./ovf-limits.js";

export interface XAttr {
  uri: string;
  local: string;
  qname: string;
  value: string;
}
export interface XNode {
  uri: string;
  local: string;
  qname: string;
  attrs: XAttr[];
  /** Character data directly inside the element (text and CDATA), "" when only whitespace. */
  text: string;
  children: XNode[];
}

export interface XmlLimits {
  elements: number;
  /** On one element. */
  elementAttributes: number;
  /** In the whole document. */
  attributes: number;
  depth: number;
  nameLength: number;
}

export const XML_LIMITS: XmlLimits = {
  elements: MAX_XML_ELEMENTS,
  elementAttributes: MAX_XML_ELEMENT_ATTRIBUTES,
  attributes: MAX_XML_ATTRIBUTES, depth: MAX_XML_DEPTH, nameLength: MAX_XML_NAME };

/** Thrown for a document over a cap (OVF_TOO_COMPLEX) or not well-formed (OVF_MALFORMED…). */
class Stop extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

const SLICE = 16 * 1024;

function tooManyOnOne(limits: XmlLimits): Stop {
  return new Stop("OVF_TOO_COMPLEX", `OVF descriptor has an element with more than ${limits.elementAttributes} attributes`);
}

export function parseXmlTree(xml: string, limits: XmlLimits = XML_LIMITS): XNode {
  const parser = sax.parser(true, { xmlns: true, position: true });
  // The open elements, each with its text so far (kept apart from the node: no property to delete).
  const stack: Array<{ node: XNode; text: string[] }> = [];
  let root: XNode | undefined;
  let elements = 0;
  let attributes = 0;

  parser.onerror = (err: Error) => {
    const msg = err.message.split("\n")[0]!;
    throw new Stop(/Unbound namespace prefix/i.test(msg) ? "OVF_NAMESPACE_UNDECLARED" : "OVF_MALFORMED", `OVF descriptor is not well-formed XML: ${msg}`);
  };
  parser.onopentag = (tag: QualifiedTag) => {
    if (++elements > limits.elements) throw new Stop("OVF_TOO_COMPLEX", `OVF descriptor has more than ${limits.elements} elements`);
    if (stack.length >= limits.depth) throw new Stop("OVF_TOO_COMPLEX", `OVF descriptor nests elements more than ${limits.depth} deep`);
    if (tag.name.length > limits.nameLength) throw new Stop("OVF_TOO_COMPLEX", `OVF descriptor has an element name longer than ${limits.nameLength} characters`);
    const attrs: XAttr[] = [];
    const list = Object.values(tag.attributes);
    if (list.length > limits.elementAttributes) throw tooManyOnOne(limits);
    for (const a of list) {
      if (++attributes > limits.attributes) throw new Stop("OVF_TOO_COMPLEX", `OVF descriptor has more than ${limits.attributes} attributes`);
      if (a.name.length > limits.nameLength) throw new Stop("OVF_TOO_COMPLEX", `OVF descriptor has an attribute name longer than ${limits.nameLength} characters`);
      attrs.push({ uri: a.uri, local: a.local, qname: a.name, value: a.value });
    }
    const node: XNode = { uri: tag.uri, local: tag.local, qname: tag.name, attrs, text: "", children: [] };
    const parent = stack.at(-1);
    if (parent) parent.node.children.push(node);
    else root = node;
    stack.push({ node, text: [] });
  };
  const onText = (t: string) => {
    stack.at(-1)?.text.push(t);
  };
  parser.ontext = onText;
  parser.oncdata = onText;
  parser.onclosetag = () => {
    const open = stack.pop()!;
    const text = open.text.join("");
    if (!/^\s*$/.test(text)) open.node.text = text;
  };

  try {
    for (let i = 0; i < xml.length; i += SLICE) {
      parser.write(xml.slice(i, i + SLICE));
      // Attributes of the tag being read: sax compares each with all before it (quadratic), so
      // this is checked every slice, while the list is at most a slice longer than the cap.
      if (parser.attribList.length > limits.elementAttributes) throw tooManyOnOne(limits);
    }
    parser.close();
  } catch (err) {
    if (err instanceof Stop) throw new UserError(err.code, err.message);
    throw err;
  }
  if (!root) throw new UserError("OVF_MALFORMED", xml.trim() === "" ? "OVF descriptor is empty" : "OVF descriptor has no root element");
  return root;
}
