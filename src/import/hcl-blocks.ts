// Where blocks start in an HCL file. hcl2json groups blocks by type (all `provisioner "shell"` in one
// list, all `provisioner "file"` in another), which loses the order between provisioners of different
// types, and it keeps no line numbers. This scanner reads the block headers in file order with their
// lines: it skips strings, comments and heredocs, and is only trusted on files HCL has parsed.

export interface BlockHeader {
  type: string;
  labels: string[];
  line: number;
  depth: number;
  /** Index of the enclosing header in the list, for nested blocks. */
  parent: number | undefined;
}

export function scanBlocks(text: string): BlockHeader[] {
  const out: BlockHeader[] = [];
  const stack: Array<number | undefined> = []; // header index per open brace (undefined: not a block)
  let line = 1;
  let i = 0;
  let atLineStart = true;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (atLineStart && (c === " " || c === "\t" || c === "\r")) {
      i++;
      continue;
    }
    if (atLineStart) {
      atLineStart = false;
      const m = /^([A-Za-z_][A-Za-z0-9_-]*)((?:[ \t]+(?:"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_-]*))*)[ \t]*\{/.exec(text.slice(i, i + 400));
      if (m) {
        const labels = [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_-]*)/g)].map((x) => x[1] ?? x[2]!);
        const parent = [...stack].reverse().find((x) => x !== undefined);
        out.push({ type: m[1]!, labels, line, depth: stack.filter((x) => x !== undefined).length, parent });
        stack.push(out.length - 1);
        i += m[0].length;
        continue;
      }
    }
    if (c === "#" || text.startsWith("//", i)) {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      for (let k = i; k < stop; k++) if (text[k] === "\n") line++;
      i = stop;
      continue;
    }
    const hd = /^<<-?([A-Za-z_][A-Za-z0-9_]*)\r?\n/.exec(text.slice(i, i + 200));
    if (hd) {
      const endRe = new RegExp(`^[ \\t]*${hd[1]}[ \\t]*$`, "m");
      const rest = text.slice(i + hd[0].length);
      const m = endRe.exec(rest);
      const stop = m ? i + hd[0].length + m.index + m[0].length : text.length;
      for (let k = i; k < stop; k++) if (text[k] === "\n") line++;
      i = stop;
      continue;
    }
    if (c === '"') {
      i = skipString(text, i, (n) => (line += n));
      continue;
    }
    if (c === "{" || c === "[" || c === "(") stack.push(undefined);
    else if (c === "}" || c === "]" || c === ")") stack.pop();
    i++;
  }
  return out;
}

/** Index after the string starting at `start`, counting newlines inside `${…}`. */
function skipString(text: string, start: number, newlines: (n: number) => void): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"') {
    if (text[i] === "\\") i += 2;
    else if (text.startsWith("${", i) || text.startsWith("%{", i)) {
      let depth = 0;
      for (; i < text.length; i++) {
        if (text[i] === "\n") newlines(1);
        if (text[i] === "{") depth++;
        else if (text[i] === "}" && --depth === 0) break;
        else if (text[i] === '"') i = skipString(text, i, newlines) - 1;
      }
      i++;
    } else i++;
  }
  return i + 1;
}
