// Per-cluster tables kept as parallel typed arrays keyed by guest cluster (12-21 bytes an entry instead
// of an object each): the VMDK writer's CopyLedger (vmdk/stream.ts) and the OVA export's ClusterSpill
// (cluster-spill.ts) record entries as batches finish, sort them once, then look them up.

export type Column = Uint32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Float64Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;

/** `from`'s entries in a new array of `size` entries (the rest zero). */
export function grownColumn<T extends Column>(from: T, size: number): T {
  const to = new (from.constructor as new (n: number) => T)(size);
  to.set(from);
  return to;
}

/**
 * The first `n` entries of `keys` and of each column, reordered by key (ascending): new arrays,
 * keys first. Unchanged (the same arrays) when the keys are already in order.
 */
export function sortedByKey(keys: Uint32Array<ArrayBuffer>, n: number, columns: Column[]): [Uint32Array<ArrayBuffer>, ...Column[]] {
  let inOrder = true;
  for (let i = 1; i < n && inOrder; i++) inOrder = keys[i - 1]! < keys[i]!;
  if (inOrder) return [keys, ...columns];
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
  const out = [keys, ...columns].map((c) => new (c.constructor as new (n: number) => Column)(n));
  order.forEach((from, to) => {
    out[0]![to] = keys[from]!;
    columns.forEach((c, j) => (out[j + 1]![to] = c[from]!));
  });
  return out as [Uint32Array<ArrayBuffer>, ...Column[]];
}

/** Index of `key` among the first `n` sorted `keys`, or -1. */
export function findKey(keys: Uint32Array<ArrayBuffer>, n: number, key: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && keys[lo] === key ? lo : -1;
}
