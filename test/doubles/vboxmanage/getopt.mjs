// TEST DOUBLE of VBoxManage (not VirtualBox): the command-line parser VBoxManage's subcommands use,
// modelled on IPRT's RTGetOpt (src/VBox/Runtime/common/misc/getopt.cpp: rtGetOptSearchLong,
// rtGetOptProcessValue, RTGetOpt) and VBoxManage's error reporting (VBoxManageHelp.cpp:
// errorGetOptWorker, errorGetOpt). Written from reading those functions; no code copied.
//
// What it models:
//   - long options take their value as the next argument, or after ':' or '=' in the same one
//     (--memory 512, --memory=512, --memory:512); "--memory512" is not the option;
//   - indexed options (--nic<N>, --natpf<N>) take the index as trailing digits before the separator;
//     an indexed option without an index fails with VERR_GETOPT_INDEX_MISSING;
//   - values are converted by type: strings as they are; on/off options only accept on/off (case
//     insensitive) and otherwise fail as an *unknown option* naming the value; numbers are decimal,
//     or hex with 0x, and the whole string must convert;
//   - "--" ends the options;
//   - arguments that do not start with '-' are returned as non-options.
import { VBoxError } from "./errors.mjs";

export const REQ = Object.freeze({
  NOTHING: "nothing",
  STRING: "string",
  BOOL_ONOFF: "onoff",
  UINT32: "u32",
  INT32: "i32",
  UINT64: "u64",
  INT64: "i64",
  /** RTGETOPT_REQ_UINT32 | RTGETOPT_FLAG_HEX: base 16 only. */
  UINT32_HEX: "x32",
  /** RTGETOPT_REQ_UINT32_OPTIONAL_PAIR | RTGETOPT_FLAG_HEX: "a", "a:b", "a/b" or "a|b". */
  UINT32_PAIR_HEX: "p32",
  UUID: "uuid",
});

/** The value kinds of the modifyvm table (modifyvm-options.mjs) as getopt requirements. */
export const KIND = { s: REQ.STRING, b: REQ.BOOL_ONOFF, u: REQ.UINT32, i: REQ.INT32, l: REQ.INT64, n: REQ.NOTHING, x: REQ.UINT32_HEX, p: REQ.UINT32_PAIR_HEX };

/** IPRT status texts as `%Rrs` prints them (the first sentence of the define's comment in iprt/err.h). */
const SHORT = {
  VERR_GETOPT_REQUIRED_ARGUMENT_MISSING: "RTGetOpt: Command line option needs argument.",
  VERR_GETOPT_INDEX_MISSING: "RTGetOpt: Command line option needs an index.",
};

const RANGES = { u32: [0n, 0xffffffffn], i32: [-0x80000000n, 0x7fffffffn], u64: [0n, 0xffffffffffffffffn], i64: [-(2n ** 63n), 2n ** 63n - 1n] };

function convertInt(kind, s) {
  // RTStrToXxxFull, base 10; then "0x<xdigit>..." in base 16. No octal, no sign for unsigned.
  let v;
  if (/^[+-]?\d+$/.test(s)) v = BigInt(s);
  else if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = BigInt(s);
  else return undefined;
  if (!kind.startsWith("i") && s.startsWith("-")) return undefined;
  const [lo, hi] = RANGES[kind];
  if (v < lo || v > hi) return undefined;
  return kind === "u64" || kind === "i64" ? v : Number(v);
}

function convertHex32(s) {
  if (!/^(0[xX])?[0-9a-fA-F]+$/.test(s)) return undefined;
  const v = BigInt(s.startsWith("0x") || s.startsWith("0X") ? s : `0x${s}`);
  return v <= 0xffffffffn ? Number(v) : undefined;
}

function processValue(def, raw) {
  switch (def.req) {
    case REQ.STRING:
      return { ok: true, value: raw };
    case REQ.BOOL_ONOFF: {
      const l = raw.toLowerCase();
      if (l === "on") return { ok: true, value: true };
      if (l === "off") return { ok: true, value: false };
      return { ok: false, rc: "VERR_GETOPT_UNKNOWN_OPTION", psz: raw };
    }
    case REQ.UUID:
      return /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/.test(raw)
        ? { ok: true, value: raw.replace(/[{}]/g, "").toLowerCase() }
        : { ok: false, rc: "VERR_GETOPT_INVALID_ARGUMENT_FORMAT" };
    case REQ.UINT32_HEX: {
      const v = convertHex32(raw);
      return v === undefined ? { ok: false, rc: "VERR_GETOPT_INVALID_ARGUMENT_FORMAT" } : { ok: true, value: v };
    }
    case REQ.UINT32_PAIR_HEX: {
      const m = /^([0-9a-fA-Fx]+)\s*(?:[:/|]\s*([0-9a-fA-Fx]+))?$/.exec(raw);
      const a = m && convertHex32(m[1]);
      const b = m && m[2] !== undefined ? convertHex32(m[2]) : 0xffffffff;
      return a === undefined || a === null || b === undefined ? { ok: false, rc: "VERR_GETOPT_INVALID_ARGUMENT_FORMAT" } : { ok: true, value: [a, b] };
    }
    default: {
      const v = convertInt(def.req, raw);
      return v === undefined ? { ok: false, rc: "VERR_GETOPT_INVALID_ARGUMENT_FORMAT" } : { ok: true, value: v };
    }
  }
}

function searchLong(arg, defs) {
  for (const def of defs) {
    const name = def.name;
    if (!arg.startsWith(name)) continue;
    let n = name.length;
    if (def.index) while (n < arg.length && /\d/.test(arg[n])) n++;
    const next = arg[n];
    if (def.req !== REQ.NOTHING) {
      if (next === undefined || next === ":" || next === "=") return def;
    } else if (next === undefined && (def.index || n === name.length)) return def;
  }
  return undefined;
}

/**
 * Parses `argv` against `defs` ({ name, id, req, index?, short? }). Returns the list of results in
 * order: { id, def, value, index } for options, { id: "nonopt", value } for other arguments, or
 * throws the VBoxError VBoxManage prints for the first parse failure (errorGetOpt).
 * `onError` lets a subcommand that formats errors itself (import/export) map the failure.
 */
export function getopt(argv, defs, { onError = formatGetOptError } = {}) {
  const out = [];
  let onlyNonOptions = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (onlyNonOptions) {
      out.push({ id: "nonopt", value: arg });
      continue;
    }
    let def = searchLong(arg, defs);
    let short = false;
    if (!def && arg.length > 1 && arg[0] === "-" && arg[1] !== "-") {
      def = defs.find((d) => d.short !== undefined && d.short === arg[1]);
      short = def !== undefined;
    }
    if (!def && arg === "--") {
      onlyNonOptions = true;
      continue;
    }
    if (!def) {
      if (arg.startsWith("-")) throw onError({ rc: "VERR_GETOPT_UNKNOWN_OPTION", psz: arg });
      out.push({ id: "nonopt", value: arg });
      continue;
    }
    let index;
    let raw;
    if (short) {
      if (def.req !== REQ.NOTHING) {
        if (arg.length === 2) {
          if (i + 1 >= argv.length) throw onError({ rc: "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING", def });
          raw = argv[++i];
        } else raw = arg.slice(2 + (arg[2] === ":" || arg[2] === "=" ? 1 : 0));
      }
    } else {
      let n = def.name.length;
      if (def.index) {
        const m = /^\d+/.exec(arg.slice(n));
        // "--nic" alone lacks the index; "--nic=nat" fails converting "=nat" to an index.
        if (!m) throw onError(n === arg.length ? { rc: "VERR_GETOPT_INDEX_MISSING", def } : { rc: "VERR_GETOPT_INVALID_ARGUMENT_FORMAT", def });
        index = Number(m[0]);
        n += m[0].length;
      }
      if (def.req !== REQ.NOTHING) {
        if (n === arg.length) {
          if (i + 1 >= argv.length) throw onError({ rc: "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING", def });
          raw = argv[++i];
        } else raw = arg.slice(n + 1);
      }
    }
    let value = true;
    if (def.req !== REQ.NOTHING) {
      const r = processValue(def, raw);
      if (!r.ok) throw onError({ rc: r.rc, psz: r.psz, def });
      value = r.value;
    }
    out.push({ id: def.id, def, value, index, arg });
  }
  return out;
}

/**
 * The error line errorGetOptWorker prints. For VERR_GETOPT_INVALID_ARGUMENT_FORMAT the real text is
 * "Invalid argument format: " followed by the value union read as a string, which at that point
 * holds the option definition pointer (RTGETOPTUNION is a union; rtGetOptProcessValue set pDef, not
 * psz), i.e. unprintable bytes: the double prints the option's name in their place.
 */
export function getOptErrorText({ rc, psz, def }) {
  if (rc === "VERR_GETOPT_UNKNOWN_OPTION") return `Unknown option: ${psz}`;
  if (rc === "VERR_GETOPT_INVALID_ARGUMENT_FORMAT") return `Invalid argument format: ${psz ?? def?.name ?? ""}`;
  if (def) return `${def.name}: ${SHORT[rc] ?? rc}`;
  return SHORT[rc] ?? rc;
}

/** errorGetOpt(): the error line (after the logo, before the usage VBoxManage prints) and exit 2. */
export function formatGetOptError(e) {
  return new VBoxError([getOptErrorText(e)], 2);
}

/** The logo showLogo() prints to stderr before a syntax error (VBoxManageHelp.cpp). */
export function logo(versionString) {
  return `Oracle VM VirtualBox Command Line Management Interface Version ${versionString}\nCopyright (C) 2005-2024 Oracle and/or its affiliates\n\n`;
}
