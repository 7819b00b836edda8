// The goss resource types vmkiln evaluates, each with the attributes goss's struct declares for it
// (goss-org/goss resource/<type>.go: the `yaml:` tags of type File, Command, Port…) and the order its
// Validate method checks them in. A key that is not one of these is an exit-2 error naming it:
// goss's own YAML decoding ignores unknown keys, and a typo there passes silently, which is what
// vmkiln refuses to do.
import { GossSyntaxError } from "./matchers.js";

/** How the system value of a property is matched (resource/validate.go ValidateValue). */
export type ValueKind = "value" | "reader";

export interface PropertyDef {
  /** The YAML key. */
  key: string;
  /** The property name goss reports (usually the key; http's are "Headers"/"Body", file's linked-to is "linkedto"). */
  property: string;
  kind: ValueKind;
  /** The probe fact that holds the value (default: key). */
  fact?: string;
  /** goss deprecateAtoI: a string here is read as an integer (with a deprecation warning). */
  atoi?: boolean;
  /**
   * The type of the system value (goss system/<type>.go: File.Exists() bool, File.Mode() string,
   * Command.ExitStatus() int…). A literal of another type can never be equal to it: goss reports a
   * failure at run time, vmkiln refuses the gossfile (exit 2 naming the key) before booting.
   */
  literal?: "bool" | "int" | "string";
}

export interface ResourceDef {
  /** The gossfile key: "kernel-param". */
  type: string;
  /** goss's ResourceType in results: "KernelParam". */
  title: string;
  /** The attribute that defaults to the resource's key (the id). */
  idKey: string;
  /** Properties, in the order goss validates them. */
  properties: PropertyDef[];
  /** A property whose failure (or false value) skips the others (resource.go shouldSkip). */
  gate?: string;
  /** A property goss requires (errMissingRequiredAttribute when absent). */
  required?: string[];
  /** Non-matcher attributes, with their type. */
  options: Record<string, "string" | "int" | "bool" | "strings" | "duration">;
  /** Attributes goss has that vmkiln cannot evaluate: exit 2 naming them, with why. */
  unsupported?: Record<string, string>;
  /** Deprecated spellings (goss still reads them): key → the key it stands for. */
  aliases?: Record<string, string>;
}

const p = (key: string, o: Partial<PropertyDef> = {}): PropertyDef => ({ key, property: key, kind: "value", ...o });
const BOOL = { literal: "bool" } as const;
const INT = { literal: "int" } as const;
const STR = { literal: "string" } as const;
const RETRY = { retry_count: "int", retry_delay: "duration" } as const;

export const RESOURCES: ResourceDef[] = [
  {
    type: "file", title: "File", idKey: "path", gate: "exists", required: ["exists"],
    properties: [
      p("exists", BOOL), p("mode", STR), p("owner", STR), p("uid", { atoi: true, ...INT }), p("group", STR), p("gid", { atoi: true, ...INT }),
      p("linked-to", { property: "linkedto", ...STR }), p("filetype", STR), p("contents", { kind: "reader" }),
      p("size", INT), p("md5", STR), p("sha256", STR), p("sha512", STR),
    ],
    options: { path: "string" },
    aliases: { contains: "contents" },
  },
  {
    type: "package", title: "Package", idKey: "name", gate: "installed", required: ["installed"],
    properties: [p("installed", BOOL), p("versions")],
    options: { name: "string", ...RETRY },
  },
  {
    type: "service", title: "Service", idKey: "name",
    properties: [p("enabled", BOOL), p("running", BOOL)],
    options: { name: "string" },
    unsupported: { runlevels: "goss reads runlevels only on Alpine init, SysV init and upstart; vmkiln checks systemd services" },
  },
  {
    type: "command", title: "Command", idKey: "exec", required: ["exit-status"],
    properties: [p("exit-status", { atoi: true, ...INT }), p("stdout", { kind: "reader" }), p("stderr", { kind: "reader" })],
    options: { exec: "string", timeout: "int", ...RETRY },
  },
  {
    type: "port", title: "Port", idKey: "port", gate: "listening", required: ["listening"],
    properties: [p("listening", BOOL), p("ip")],
    options: { port: "string" },
  },
  {
    type: "user", title: "User", idKey: "username", gate: "exists", required: ["exists"],
    properties: [p("exists", BOOL), p("uid", { atoi: true, ...INT }), p("gid", { atoi: true, ...INT }), p("home", STR), p("groups"), p("shell", STR)],
    options: { username: "string" },
  },
  {
    type: "group", title: "Group", idKey: "groupname", gate: "exists", required: ["exists"],
    properties: [p("exists", BOOL), p("gid", { atoi: true, ...INT })],
    options: { groupname: "string" },
  },
  {
    type: "kernel-param", title: "KernelParam", idKey: "name", required: ["value"],
    properties: [p("value")],
    options: { name: "string" },
  },
  {
    type: "process", title: "Process", idKey: "comm", required: ["running"],
    properties: [p("running", BOOL)],
    options: { comm: "string" },
  },
  {
    type: "mount", title: "Mount", idKey: "mountpoint", gate: "exists", required: ["exists"],
    properties: [p("exists", BOOL), p("opts"), p("vfs-opts"), p("source", STR), p("filesystem", STR), p("usage", INT)],
    options: { mountpoint: "string", timeout: "int" },
  },
  {
    type: "http", title: "HTTP", idKey: "url", gate: "status", required: ["status"],
    properties: [p("status", INT), p("headers", { property: "Headers", kind: "reader" }), p("body", { property: "Body", kind: "reader" })],
    options: {
      url: "string", method: "string", "allow-insecure": "bool", "no-follow-redirects": "bool", timeout: "int",
      "request-headers": "strings", "request-body": "string", username: "string", password: "string",
      "ca-file": "string", "cert-file": "string", "key-file": "string", proxy: "string",
    },
  },
  {
    type: "addr", title: "Addr", idKey: "address", required: ["reachable"],
    properties: [p("reachable", BOOL)],
    options: { address: "string", "local-address": "string", timeout: "int" },
  },
  {
    type: "dns", title: "DNS", idKey: "resolve", gate: "resolvable", required: ["resolvable"],
    properties: [p("resolvable", BOOL), p("addrs")],
    options: { resolve: "string", timeout: "int", ...RETRY },
    aliases: { resolveable: "resolvable" },
    unsupported: { server: "vmkiln resolves with the guest's own resolver (getaddrinfo); querying a given server needs a DNS client in the guest" },
  },
  {
    type: "interface", title: "Interface", idKey: "name", gate: "exists", required: ["exists"],
    properties: [p("exists", BOOL), p("addrs"), p("mtu", INT)],
    options: { name: "string" },
  },
];

/** Keys every resource takes (resource.go: Title, Meta, Skip). */
export const COMMON_KEYS = ["title", "meta", "skip"];

export const RESOURCE_BY_TYPE = new Map(RESOURCES.map((r) => [r.type, r]));

/** One resource of a gossfile, checked and normalized. */
export interface GossResource {
  def: ResourceDef;
  /** The key it is written under (goss's resource id). */
  id: string;
  /** Where it was declared (file), for messages. */
  file: string;
  title: string | undefined;
  meta: unknown;
  skip: boolean;
  /** Matchers by YAML key, in goss's validation order. */
  expect: Array<{ prop: PropertyDef; value: unknown }>;
  options: Record<string, unknown>;
}

/** Checks one resource's attributes and returns it normalized; exit 2 naming any key vmkiln does not take. */
export function normalizeResource(def: ResourceDef, id: string, raw: unknown, file: string, warn: (m: string) => void): GossResource {
  const where = `${file}: ${def.type}.${id}`;
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new GossSyntaxError(where, `expected a mapping of attributes, got ${JSON.stringify(raw)}`);
  const attrs: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const [old, now] of Object.entries(def.aliases ?? {})) {
    if (old in attrs) {
      warn(`${where}: ${old} is deprecated in goss; read as ${now}`);
      if (!(now in attrs)) attrs[now] = attrs[old];
      delete attrs[old];
    }
  }
  const out: GossResource = { def, id, file, title: undefined, meta: undefined, skip: false, expect: [], options: {} };
  const known = [...COMMON_KEYS, ...def.properties.map((x) => x.key), ...Object.keys(def.options)];
  for (const [key, value] of Object.entries(attrs)) {
    if (def.unsupported?.[key]) throw new GossSyntaxError(`${where}.${key}`, `not supported by vmkiln: ${def.unsupported[key]}`);
    if (!known.includes(key)) {
      throw new GossSyntaxError(`${where}.${key}`, `unknown attribute for a ${def.type} resource (known: ${known.filter((k) => k !== "meta").join(", ")})`);
    }
    if (key === "title") {
      if (typeof value !== "string") throw new GossSyntaxError(`${where}.title`, "expected a string");
      out.title = value;
    } else if (key === "meta") out.meta = value;
    else if (key === "skip") {
      if (typeof value !== "boolean") throw new GossSyntaxError(`${where}.skip`, `expected true or false, got ${JSON.stringify(value)}`);
      out.skip = value;
    } else if (key in def.options) out.options[key] = checkOption(def.options[key]!, value, `${where}.${key}`);
  }
  for (const prop of def.properties) {
    if (!(prop.key in attrs)) continue;
    let value = attrs[prop.key];
    if (prop.atoi && typeof value === "string") {
      // resource.go deprecateAtoI: goss panics on a non-numeric string; vmkiln says where it is.
      if (!/^-?\d+$/.test(value)) throw new GossSyntaxError(`${where}.${prop.key}`, `expected an integer, got ${JSON.stringify(value)}`);
      warn(`${where}.${prop.key} should be an integer not a string`);
      value = Number(value);
    }
    // resource.go isSetWarnEmpty: an empty list asserts nothing, so the property is not checked.
    if (Array.isArray(value) && value.length === 0 && prop.kind === "reader") {
      warn(`${where}.${prop.key} is an empty list, which asserts nothing and always passes. Use "" to assert empty content, or remove it.`);
      continue;
    }
    if (value === null) throw new GossSyntaxError(`${where}.${prop.key}`, "Missing required attribute (a matcher, not null)");
    checkLiteral(prop, value, `${where}.${prop.key}`);
    out.expect.push({ prop, value });
  }
  for (const r of def.required ?? []) {
    if (!(r in attrs)) throw new GossSyntaxError(where, `missing required attribute ${r}`);
  }
  return out;
}

/** A literal (not a matcher mapping) must have the system value's type, or it could never match. */
function checkLiteral(prop: PropertyDef, value: unknown, where: string): void {
  if (!prop.literal || (typeof value === "object" && value !== null && !Array.isArray(value))) return;
  const ok = prop.literal === "bool" ? typeof value === "boolean" : prop.literal === "int" ? typeof value === "number" && Number.isInteger(value) : typeof value === "string";
  if (ok) return;
  const want = prop.literal === "bool" ? "true or false" : prop.literal === "int" ? "a whole number" : prop.key === "mode" ? 'a quoted string such as "0644"' : "a string";
  throw new GossSyntaxError(where, `expected ${want} (or a matcher), got ${JSON.stringify(value)}`);
}

function checkOption(type: string, value: unknown, where: string): unknown {
  switch (type) {
    case "string":
      if (typeof value !== "string") throw new GossSyntaxError(where, `expected a string, got ${JSON.stringify(value)}`);
      return value;
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) throw new GossSyntaxError(where, `expected a whole number, got ${JSON.stringify(value)}`);
      return value;
    case "bool":
      if (typeof value !== "boolean") throw new GossSyntaxError(where, `expected true or false, got ${JSON.stringify(value)}`);
      return value;
    case "strings":
      if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) throw new GossSyntaxError(where, `expected a list of strings, got ${JSON.stringify(value)}`);
      return value;
    case "duration":
      return retryDelayMs(value, where);
    default:
      throw new GossSyntaxError(where, `internal: unknown option type ${type}`);
  }
}

/** resource/retry.go RetryDelay: milliseconds as a number, or a Go duration string ("500ms", "2s"). */
export function retryDelayMs(value: unknown, where: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === "string") {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(value.trim());
    if (m) {
      const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
      return Number(m[1]) * unit[m[2]!]!;
    }
    if (/^\d+$/.test(value.trim())) return Number(value);
  }
  throw new GossSyntaxError(where, `expected milliseconds or a duration such as 500ms or 2s, got ${JSON.stringify(value)}`);
}
