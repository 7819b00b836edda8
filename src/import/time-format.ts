// Go time layouts ({{isotime "2006-01-02"}}) and HCL formatdate specs ("YYYY-MM-DD"), in UTC, for
// the values vmkiln fixes at import time (generated.ts).

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Go's reference-time layout (time/format.go), the common tokens. */
export function goTimeFormat(d: Date, layout: string): string {
  const tokens: Array<[string, () => string]> = [
    ["2006", () => String(d.getUTCFullYear())],
    ["January", () => MONTHS[d.getUTCMonth()]!],
    ["Jan", () => MONTHS[d.getUTCMonth()]!.slice(0, 3)],
    ["Monday", () => DAYS[d.getUTCDay()]!],
    ["Mon", () => DAYS[d.getUTCDay()]!.slice(0, 3)],
    ["Z07:00", () => "Z"],
    ["-07:00", () => "+00:00"],
    ["-0700", () => "+0000"],
    ["MST", () => "UTC"],
    ["01", () => pad(d.getUTCMonth() + 1)],
    ["02", () => pad(d.getUTCDate())],
    ["15", () => pad(d.getUTCHours())],
    ["03", () => pad(d.getUTCHours() % 12 || 12)],
    ["04", () => pad(d.getUTCMinutes())],
    ["05", () => pad(d.getUTCSeconds())],
    ["06", () => pad(d.getUTCFullYear() % 100)],
    ["PM", () => (d.getUTCHours() < 12 ? "AM" : "PM")],
    ["1", () => String(d.getUTCMonth() + 1)],
    ["2", () => String(d.getUTCDate())],
    ["3", () => String(d.getUTCHours() % 12 || 12)],
  ];
  let out = "";
  let i = 0;
  outer: while (i < layout.length) {
    for (const [tok, f] of tokens) {
      if (layout.startsWith(tok, i)) {
        out += f();
        i += tok.length;
        continue outer;
      }
    }
    out += layout[i];
    i++;
  }
  return out;
}

/** HCL's formatdate (go-cty stdlib datetime.go): YYYY YY MMMM MMM MM M DD D EEEE EEE hh h HH H mm m ss s ZZZZ Z, 'quoted'. */
export function hclDateFormat(d: Date, spec: string): string {
  const tokens: Array<[string, () => string]> = [
    ["YYYY", () => String(d.getUTCFullYear())],
    ["YY", () => pad(d.getUTCFullYear() % 100)],
    ["MMMM", () => MONTHS[d.getUTCMonth()]!],
    ["MMM", () => MONTHS[d.getUTCMonth()]!.slice(0, 3)],
    ["MM", () => pad(d.getUTCMonth() + 1)],
    ["M", () => String(d.getUTCMonth() + 1)],
    ["DD", () => pad(d.getUTCDate())],
    ["D", () => String(d.getUTCDate())],
    ["EEEE", () => DAYS[d.getUTCDay()]!],
    ["EEE", () => DAYS[d.getUTCDay()]!.slice(0, 3)],
    ["hh", () => pad(d.getUTCHours())],
    ["h", () => String(d.getUTCHours())],
    ["HH", () => pad(d.getUTCHours() % 12 || 12)],
    ["H", () => String(d.getUTCHours() % 12 || 12)],
    ["AA", () => (d.getUTCHours() < 12 ? "AM" : "PM")],
    ["aa", () => (d.getUTCHours() < 12 ? "am" : "pm")],
    ["mm", () => pad(d.getUTCMinutes())],
    ["m", () => String(d.getUTCMinutes())],
    ["ss", () => pad(d.getUTCSeconds())],
    ["s", () => String(d.getUTCSeconds())],
    ["ZZZZZ", () => "+00:00"],
    ["ZZZZ", () => "+0000"],
    ["ZZZ", () => "UTC"],
    ["Z", () => "Z"],
  ];
  let out = "";
  let i = 0;
  outer: while (i < spec.length) {
    if (spec[i] === "'") {
      const end = spec.indexOf("'", i + 1);
      if (end === i + 1) out += "'";
      else out += spec.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? spec.length : end + 1;
      continue;
    }
    for (const [tok, f] of tokens) {
      if (spec.startsWith(tok, i)) {
        out += f();
        i += tok.length;
        continue outer;
      }
    }
    out += spec[i];
    i++;
  }
  return out;
}
