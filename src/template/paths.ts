// Field paths as users read them in problems: `provision[1].shell.inline`, `drivers.qemu.memory`.

export type PathSegment = string | number;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const key = String(seg);
      // Record keys (env names, variable names) may hold characters a dotted path can't show.
      if (/^[A-Za-z0-9_$-]+$/.test(key)) out += out === "" ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/**
 * Edit distance where swapping two neighbours counts as one edit (optimal string alignment), so the
 * commonest typo, `cpsu` for `cpus` or `<wiat5>` for `<wait5>`, is one edit away. Small inputs only.
 */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest known name, if it is close enough to be a plausible typo. */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDist <= limit ? best : undefined;
}

/**
 * Orders problem paths as the fields appear in the document, so a report reads top to bottom.
 * A path not in the tree (a missing required field) sorts with its nearest present parent.
 */
export function documentOrder(tree: unknown): (path: string) => number {
  const index = new Map<string, number>();
  const walk = (node: unknown, path: PathSegment[]): void => {
    index.set(formatPath(path), index.size);
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, [...path, i]));
    else if (node !== null && typeof node === "object") for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
  };
  walk(tree, []);
  return (path) => {
    for (let p = path; ; ) {
      const found = index.get(p);
      if (found !== undefined) return found;
      if (p === "") return -1;
      // Drop the last segment; a top-level key ("source") has no separator and goes straight to the
      // root. (Without that step the loop never ended: `vmkiln validate` on `name: x` hung.)
      const parent = p.replace(/(?:\.[^.[\]]+|\[[^\]]*\])$/, "");
      p = parent === p ? "" : parent;
    }
  };
}
