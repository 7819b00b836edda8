// TEST DOUBLE helper: a small XML reader and writer for OVF descriptors (not VirtualBox code). The
// reader keeps what VirtualBox's OVF reader uses: element names split into prefix and local name
// with their namespace URI, attributes by local name, text content, and the line each element
// starts on (ovfreader.cpp reports line numbers in its errors). No DTDs, no external entities.

const ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decode(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (m, e) => {
    if (e[0] === "#") return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e] ?? m;
  });
}

export class XmlError extends Error {}

/** Parses `text`; returns the root element { name, prefix, local, ns, attrs, attrList, children, text, line }. */
export function parseXml(text) {
  let i = 0;
  let line = 1;
  const advance = (to) => {
    for (let k = i; k < to; k++) if (text.charCodeAt(k) === 10) line++;
    i = to;
  };
  const stack = [];
  let root;
  const nsStack = [{ xml: "http://www.w3.org/XML/1998/namespace" }];
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    if (lt < 0) {
      if (text.slice(i).trim() && !stack.length) throw new XmlError(`text after the root element, line ${line}`);
      if (stack.length) stack[stack.length - 1].text += decode(text.slice(i));
      advance(text.length);
      break;
    }
    if (lt > i) {
      const t = text.slice(i, lt);
      if (stack.length) stack[stack.length - 1].text += decode(t);
      else if (t.trim()) throw new XmlError(`text outside the root element, line ${line}`);
      advance(lt);
    }
    if (text.startsWith("<?", i)) {
      const end = text.indexOf("?>", i);
      if (end < 0) throw new XmlError(`unterminated processing instruction, line ${line}`);
      advance(end + 2);
    } else if (text.startsWith("<!--", i)) {
      const end = text.indexOf("-->", i);
      if (end < 0) throw new XmlError(`unterminated comment, line ${line}`);
      advance(end + 3);
    } else if (text.startsWith("<![CDATA[", i)) {
      const end = text.indexOf("]]>", i);
      if (end < 0) throw new XmlError(`unterminated CDATA section, line ${line}`);
      if (stack.length) stack[stack.length - 1].text += text.slice(i + 9, end);
      advance(end + 3);
    } else if (text.startsWith("<!", i)) {
      throw new XmlError(`document type declarations are not supported, line ${line}`);
    } else if (text.startsWith("</", i)) {
      const end = text.indexOf(">", i);
      const name = text.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top || top.name !== name) throw new XmlError(`mismatched end tag </${name}>, line ${line}`);
      nsStack.pop();
      advance(end + 1);
    } else {
      const startLine = line;
      const m = /^<([A-Za-z_][\w.:-]*)/.exec(text.slice(i, i + 300));
      if (!m) throw new XmlError(`malformed tag, line ${line}`);
      let j = i + m[0].length;
      const attrList = [];
      for (;;) {
        while (/\s/.test(text[j] ?? "")) j++;
        if (text[j] === ">" || text.startsWith("/>", j)) break;
        const am = /^([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(text.slice(j, j + 100000));
        if (!am) throw new XmlError(`malformed attribute in <${m[1]}>, line ${line}`);
        attrList.push({ name: am[1], value: decode(am[3] ?? am[4]) });
        j += am[0].length;
      }
      const selfClosing = text.startsWith("/>", j);
      const scope = { ...nsStack[nsStack.length - 1] };
      for (const a of attrList) {
        if (a.name === "xmlns") scope[""] = a.value;
        else if (a.name.startsWith("xmlns:")) scope[a.name.slice(6)] = a.value;
      }
      const split = (n) => (n.includes(":") ? [n.slice(0, n.indexOf(":")), n.slice(n.indexOf(":") + 1)] : ["", n]);
      const [prefix, local] = split(m[1]);
      const el = { name: m[1], prefix, local, ns: scope[prefix], attrs: {}, attrList: [], children: [], text: "", line: startLine, parent: stack[stack.length - 1] };
      for (const a of attrList) {
        const [ap, al] = split(a.name);
        el.attrList.push({ name: a.name, prefix: ap, local: al, ns: ap ? scope[ap] : undefined, value: a.value });
        if (a.name !== "xmlns" && ap !== "xmlns") el.attrs[al] = a.value;
      }
      if (stack.length) stack[stack.length - 1].children.push(el);
      else if (root) throw new XmlError(`more than one root element, line ${line}`);
      else root = el;
      advance(j + (selfClosing ? 2 : 1));
      if (!selfClosing) {
        stack.push(el);
        nsStack.push(scope);
      }
    }
  }
  if (stack.length) throw new XmlError(`unclosed element <${stack[stack.length - 1].name}>`);
  if (!root) throw new XmlError("no root element");
  return root;
}

/** Child elements by local name (namespace ignored, as libxml2 lookups by name do in ovfreader). */
export const kids = (el, local) => el.children.filter((c) => !local || c.local === local);
export const kid = (el, local) => el.children.find((c) => c.local === local);
export const kidNs = (el, prefix, local) => el.children.find((c) => c.local === local && c.prefix === prefix);

// ---- writing ----

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** { name, attrs: [[k, v]...], children: [...], text } → indented XML, two spaces a level. */
export function writeXml(el, depth = 0) {
  const pad = "  ".repeat(depth);
  const attrs = (el.attrs ?? []).map(([k, v]) => ` ${k}="${esc(v)}"`).join("");
  const children = el.children ?? [];
  if (!children.length && (el.text === undefined || el.text === "")) return `${pad}<${el.name}${attrs}/>\n`;
  if (!children.length) return `${pad}<${el.name}${attrs}>${esc(el.text)}</${el.name}>\n`;
  return `${pad}<${el.name}${attrs}>\n${children.map((c) => writeXml(c, depth + 1)).join("")}${pad}</${el.name}>\n`;
}

export const E = (name, attrs = [], children = [], text) => ({ name, attrs, children, text });
