// The distribution's default user (cloud.cfg's system_info.default_user.name), read on the host.
// The cleaning script used to ask cloud-init's own reader in the guest (a Python start that imports
// cloudinit: 2-3 s under TCG, on every build). Here one `grep` prints the configuration files and
// the host merges them as cloud-init does; whatever this does not model (merge_how, conf_d, a
// value of another type on the way to the name, bytes that are not UTF-8, a file it could not
// read) gives `undefined`, and the script then asks cloud-init in the guest as before.
//
// What it models (cloud-init 22.4.2, cloudinit/util.py): read_conf_with_confd reads cloud.cfg, then
// cloud.cfg.d/ (read_conf_d: the regular files ending in .cfg, sorted in reverse, "later trumps"),
// and mergemanydict([confd, cfg]) merges them with the default mergers (cloudinit/mergers/m_dict.py,
// Merger._do_dict_replace with method no_replace and recurse_dict): the first file to set a key
// keeps it, and two mappings under one key merge the same way. load_yaml gives {} for a file that
// is not a YAML mapping. read_conf renders Jinja only when given instance data, which that reader
// is not, so a "## template: jinja" file is read as plain YAML here too.
import { parseAllDocuments } from "yaml";
import { shq } from "../ssh/session.js";

const FILES = "vmkiln-files";
const LINES = "vmkiln-lines";
const NO_CFG = "vmkiln-no-cloud-cfg";
const UNREADABLE = "vmkiln-unreadable";
const GREP_EXIT = "vmkiln-grep-exit";

/**
 * Prints the regular files cloud-init would read (marking an unreadable one), then every line of
 * them prefixed by its file (grep -H), then grep's exit status: a grep that failed (one without -a
 * or -H, a file it could not read) must not pass for files with nothing in them.
 */
export function cloudConfigDumpScript(root = ""): string {
  return `R=${shq(root)}
f="$R/etc/cloud/cloud.cfg"
[ -e "$f" ] || { echo ${NO_CFG}; exit 0; }
echo ${FILES}
set --
for g in "$f" "$R"/etc/cloud/cloud.cfg.d/*.cfg; do
  [ -f "$g" ] || continue
  printf '%s\\n' "$g"
  [ -r "$g" ] || echo "${UNREADABLE} $g"
  set -- "$@" "$g"
done
echo ${LINES}
grep -a -H '' "$@"
echo "${GREP_EXIT} $?"
`;
}

type Mapping = Record<string, unknown>;
const isMapping = (v: unknown): v is Mapping => typeof v === "object" && v !== null && !Array.isArray(v);

/** A user name the cleaning script can put in grep and sed patterns as is. */
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

/**
 * The default user's name from the dump's output: a name, "" when the configuration names none,
 * undefined when this reader cannot tell (the guest's cloud-init decides then).
 */
export function defaultUserFromDump(output: string, root = ""): string | undefined {
  const lines = output.split("\n");
  if (lines[0] === NO_CFG) return "";
  if (lines[0] !== FILES) return undefined;
  const linesAt = lines.indexOf(LINES);
  if (linesAt < 0) return undefined;
  const base = `${root}/etc/cloud/cloud.cfg`;
  const dir = `${base}.d/`;
  const listed = lines.slice(1, linesAt);
  if (listed[0] !== base) return undefined;
  const dropIns: string[] = [];
  for (const p of listed.slice(1)) {
    if (p.startsWith(UNREADABLE + " ")) return undefined;
    const name = p.slice(dir.length);
    // A name the line prefixes could not tell apart: ask cloud-init.
    if (!p.startsWith(dir) || !name.endsWith(".cfg") || name.includes("/") || name.includes(":")) return undefined;
    dropIns.push(p);
  }
  const rest = lines.slice(linesAt + 1);
  while (rest.length && rest.at(-1) === "") rest.pop(); // the output's last newline
  // grep: 0 lines found, 1 none (every file empty); anything else, or no status: it failed.
  const status = rest.pop();
  if (status !== `${GREP_EXIT} 0` && status !== `${GREP_EXIT} 1`) return undefined;
  const content = new Map<string, string[]>([[base, []], ...dropIns.map((p) => [p, []] as [string, string[]])]);
  for (const l of rest) {
    const colon = l.startsWith(dir) ? l.indexOf(":", dir.length) : l.startsWith(base + ":") ? base.length : -1;
    const body = colon < 0 ? undefined : content.get(l.slice(0, colon));
    if (!body) return undefined;
    body.push(l.slice(colon + 1));
  }
  // Python's sorted() compares code points, as a byte-wise UTF-8 compare does.
  const byName = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const order = [...dropIns.sort(byName).reverse(), base];
  const configs: Mapping[] = [];
  for (const p of order) {
    const text = content.get(p)!.join("\n");
    if (text.includes("\uFFFD")) return undefined;
    // Any error or warning (an unknown tag: safe_load refuses a file this parser would read as text):
    // PyYAML and this parser may not agree on such a file.
    const docs = parseAllDocuments(text, { version: "1.1", uniqueKeys: false, logLevel: "silent" });
    if (!Array.isArray(docs) || docs.length > 1) return undefined; // safe_load wants one document
    const parsed = docs[0];
    if (!parsed) continue; // nothing but comments: {}
    if (parsed.errors.length || parsed.warnings.length) return undefined;
    let doc: unknown;
    try {
      doc = parsed.toJS({ maxAliasCount: 100 }); // an alias bomb throws
    } catch {
      return undefined;
    }
    if (!isMapping(doc)) continue; // load_yaml: {}
    if ("merge_how" in doc || "merge_type" in doc) return undefined;
    if (p === base && "conf_d" in doc) return undefined;
    configs.push(doc);
  }
  // no_replace: the first config (highest priority) that sets the name wins, as long as every
  // config before it holds a mapping (or nothing) on the way there.
  for (const c of configs) {
    if (!("system_info" in c)) continue;
    const si = c.system_info;
    if (!isMapping(si)) return undefined;
    if (!("default_user" in si)) continue;
    const du = si.default_user;
    if (!isMapping(du)) return undefined;
    if (!("name" in du)) continue;
    const name = du.name;
    return typeof name === "string" && SAFE_NAME.test(name) ? name : undefined;
  }
  return "";
}
