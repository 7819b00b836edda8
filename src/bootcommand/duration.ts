// Go `time.ParseDuration` syntax, which Packer's `<waitXX>` accepts ("1m30s", "250ms", "1.5s").
// Results are whole milliseconds (the resolution every driver can honour).

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6, us: 1e-3, "µs": 1e-3 /* U+00B5 */, "μs": 1e-3 /* U+03BC */, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

const COMPONENT = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds for a Go duration without sign ("1m30s"), or undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0; // Go accepts a bare zero
  if (text === "") return undefined;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    COMPONENT.lastIndex = pos;
    const m = COMPONENT.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = COMPONENT.lastIndex;
  }
  return Math.round(total);
}

/** Canonical spelling used by eventsToText: "1h2m3s", "1m30s", "250ms", "1s500ms", "0s". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
