// `vmkiln verify <file.ova|dir|file.ovf>`: streams the OVA through tar-stream's extract once, hashing
// each member in memory and writing nothing anywhere, so absolute names, `..`, links and device
// members are reported, never extracted. Findings, not exceptions: the caller prints them all.
// Exit semantics (mapped by the CLI): 0 clean, 1 findings, 2 unreadable input (UserError thrown).
//
// The input is untrusted: memory and time stay bounded whatever it holds (ovf-limits.ts). The
// descriptor and manifest are kept only up to their caps, member names are kept truncated, reading
// stops after MAX_OVA_MEMBERS members, and every per-member check is a map lookup (a list scan per
// member made 100,000 members take 284 s).
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { UserError, asAbortError, throwIfAborted } from "../errors.js";
import { READ_CHUNK, digestFile } from "./digest.js";
import { finding, type Finding } from "./findings.js";
import { parseManifest, type MfAlgorithm } from "./manifest-mf.js";
import { parseOvf } from "./ovf-parse.js";
import { MAX_MEMBER_NAME, MAX_MF_BYTES, MAX_OVA_MEMBERS, MAX_OVF_BYTES, MAX_SUM_FILE_BYTES } from "./ovf-limits.js";
import { checkPackage, type PackageFile } from "./package-check.js";

export type { Finding } from "./findings.js";

export interface VerifyMember {
  name: string;
  /** tar-stream type: file, symlink, link, directory, character-device, ... ("file" in directory mode). */
  type: string;
  size: number;
  sha256?: string;
}

export interface VerifyResult {
  ok: boolean;
  kind: "ova" | "directory";
  target: string;
  findings: Finding[];
  members: VerifyMember[];
  /** SHA-256 of the OVA file itself (ova mode). */
  sha256?: string;
  durationMs: number;
}

/** Ends the tar read early (too many members); not a corrupt archive. */
class StopReading extends Error {}

export async function verifyOva(target: string, opts: { signal: AbortSignal }): Promise<VerifyResult> {
  const started = Date.now();
  throwIfAborted(opts.signal);
  const st = await stat(target).catch((err: NodeJS.ErrnoException) => {
    throw new UserError("VERIFY_UNREADABLE", `${target}: ${err.code === "ENOENT" ? "no such file or directory" : err.message}`, { cause: err });
  });
  const r = st.isDirectory() || /\.ovf$/i.test(target) ? await verifyDirectory(target, st.isDirectory(), opts.signal) : await verifyTar(target, opts.signal);
  return { ...r, ok: r.findings.length === 0, target, durationMs: Date.now() - started };
}

type Partial = Omit<VerifyResult, "ok" | "target" | "durationMs">;

async function verifyTar(target: string, signal: AbortSignal): Promise<Partial> {
  const findings: Finding[] = [];
  const members: Array<VerifyMember & { index: number }> = [];
  const regularNames = new Set<string>();
  const files: PackageFile[] = [];
  let ovfText: string | undefined;
  let ovfName: string | undefined;
  let ovfTooLarge = false;
  let mfText: string | undefined;
  let mfName: string | undefined;
  let mfAlgorithms = new Map<string, Set<MfAlgorithm>>();
  let index = 0;
  let stopped = false;
  const ovaHash = createHash("sha256");
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      ovaHash.update(chunk);
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  extract.on("entry", (h, stream, next) => {
    const i = index++;
    stream.on("error", () => {}); // the same error reaches the pipeline; reported there
    if (i >= MAX_OVA_MEMBERS) {
      stopped = true;
      findings.push(finding("TAR_TOO_MANY_MEMBERS", `more than ${MAX_OVA_MEMBERS} members; stopped reading (an OVA holds a descriptor, a manifest and a few disks)`));
      extract.destroy(new StopReading());
      return;
    }
    const fullName = h.name;
    // tar-stream reads names and link targets up to 4 MiB: keep and show a bounded prefix.
    const name = clip(fullName);
    const m: VerifyMember & { index: number } = { name, type: h.type ?? "file", size: h.size ?? 0, index: i };
    members.push(m);
    const add = (code: string, message: string) => findings.push(finding(code, message, name));
    if (fullName.length > MAX_MEMBER_NAME) add("MEMBER_NAME_LONG", `member name of ${fullName.length} characters (an OVA member name fits 100 bytes)`);
    if (fullName.startsWith("/")) add("MEMBER_ABSOLUTE", `absolute member name ${name}`);
    else if (fullName.split("/").includes("..")) add("MEMBER_DOTDOT", `member name ${name} contains ..`);
    else if (fullName.includes("/")) add("MEMBER_NOT_BASENAME", `member ${name} is not a bare basename`);
    if (h.pax) add("MEMBER_PAX", `${name} has a PAX header (reported unsupported by vSphere)`);
    const regular = m.type === "file" || m.type === "contiguous-file";
    if (m.type === "symlink" || m.type === "link") add("MEMBER_LINK", `${name} is a ${m.type === "link" ? "hard link" : "symlink"} to ${clip(h.linkname ?? "?")}`);
    else if (["character-device", "block-device", "fifo"].includes(m.type)) add("MEMBER_DEVICE", `${name} is a ${m.type}`);
    else if (!regular) add("MEMBER_TYPE", `${name} is a ${m.type}, not a regular file`);
    if (regular) {
      if ((h.uid ?? 0) !== 0 || (h.gid ?? 0) !== 0) add("MEMBER_OWNER", `${name} owner ${h.uid}/${h.gid} (want 0/0)`);
      if (((h.mode ?? 0) & 0o7777) !== 0o644) add("MEMBER_MODE", `${name} mode ${((h.mode ?? 0) & 0o7777).toString(8)} (want 644)`);
      if (regularNames.has(fullName)) add("MEMBER_DUPLICATE", `${name} appears twice`);
      regularNames.add(fullName);
    }
    if (!regular) {
      stream.on("end", next);
      stream.resume();
      return;
    }
    const isOvf = /\.ovf$/i.test(fullName) && ovfName === undefined;
    const isMf = /\.mf$/i.test(fullName) && mfName === undefined;
    const cap = isOvf ? MAX_OVF_BYTES : isMf ? MAX_MF_BYTES : 0;
    const chunks: Buffer[] = [];
    let kept = 0;
    let over = false;
    const algos = new Set<MfAlgorithm>(["sha256", ...(mfAlgorithms.get(fullName) ?? [])]);
    const hashes = [...algos].map((a) => [a, createHash(a)] as [MfAlgorithm, Hash]);
    stream.on("data", (data: unknown) => {
      const c = data as Buffer;
      for (const [, hh] of hashes) hh.update(c);
      if (!cap || over) return;
      if (kept + c.length > cap) {
        over = true;
        chunks.length = 0; // not parsed: let it go now
        return;
      }
      chunks.push(c);
      kept += c.length;
    });
    stream.on("end", () => {
      const digests: PackageFile["digests"] = {};
      for (const [a, hh] of hashes) digests[a] = hh.digest("hex");
      m.sha256 = digests.sha256!;
      if (isOvf || isMf) {
        if (over) add(isOvf ? "OVF_TOO_LARGE" : "MF_TOO_LARGE", `${name} is ${m.size} bytes, larger than the ${cap}-byte limit; not read`);
        const text = over ? "" : Buffer.concat(chunks).toString("utf8");
        if (isOvf) {
          ovfName = fullName;
          ovfText = text;
          ovfTooLarge = over;
        } else {
          mfName = fullName;
          mfText = text;
          mfAlgorithms = new Map();
          for (const e of parseManifest(text).entries) {
            if (!mfAlgorithms.has(e.file)) mfAlgorithms.set(e.file, new Set());
            mfAlgorithms.get(e.file)!.add(e.algorithm);
          }
        }
      }
      if (!isMf) files.push({ name: fullName, size: m.size, digests });
      next();
    });
  });

  try {
    await pipeline(createReadStream(target, { highWaterMark: READ_CHUNK }), tap, extract, { signal });
  } catch (err) {
    if (signal.aborted) throw asAbortError(signal.reason);
    if (!(err instanceof StopReading) && !stopped) {
      const msg = err instanceof Error ? err.message : String(err);
      if (members.length === 0) throw new UserError("VERIFY_UNREADABLE", `${target}: not a readable tar archive (${msg})`, { cause: err });
      findings.push(finding("TAR_CORRUPT", `tar stream broken after ${members.length} member(s): ${msg}`));
    }
  }
  if (members.length === 0) throw new UserError("VERIFY_UNREADABLE", `${target}: empty tar archive, not an OVA`);
  // Read in part only: the OVA's own digest is unknown, so its .sha256 is not checked.
  const sha256 = stopped ? undefined : ovaHash.digest("hex");
  const done = (): Partial => ({ kind: "ova", findings, members: strip(members), ...(sha256 ? { sha256 } : {}) });

  // Order: OVF first, manifest second, then the referenced files in References order.
  const first = members[0]!;
  if (!/\.ovf$/i.test(first.name)) {
    findings.push(finding("OVF_NOT_FIRST", `first member is ${first.name}; the OVF descriptor must come first`, first.name));
  }
  if (ovfText === undefined || ovfName === undefined) {
    findings.push(finding("OVF_MISSING", "no .ovf member"));
    return done();
  }
  if (ovfTooLarge) return done();
  const mfMember = members.find((x) => x.name === mfName);
  if (mfMember && mfMember.index !== 1) {
    findings.push(finding("MF_POSITION", `${mfMember.name} is member ${mfMember.index + 1}; it must follow the OVF`, mfMember.name));
  }
  const extraMf = members.filter((x) => /\.mf$/i.test(x.name) && x.name !== mfName);
  for (const x of extraMf) findings.push(finding("MF_MULTIPLE", `second manifest ${x.name}`, x.name));

  const input = { ovfName, ovfText, files, ...(mfText !== undefined && mfName !== undefined ? { mfText, mfName } : {}) };
  const { findings: more, ovf } = await checkPackage(input);
  findings.push(...more);
  if (ovf) {
    const refs = new Set(ovf.files.map((f) => f.href));
    const present = members.filter((x) => refs.has(x.name)).map((x) => x.name);
    const presentSet = new Set(present);
    const expected = [...refs].filter((n) => presentSet.has(n));
    if (present.join("\n") !== expected.join("\n")) {
      findings.push(finding("MEMBER_ORDER", `files are in order ${present.join(", ")}; References order is ${expected.join(", ")}`));
    }
  }
  if (sha256) findings.push(...(await checkSumFile(target, sha256)));
  return done();
}

function clip(name: string): string {
  return name.length > MAX_MEMBER_NAME ? `${name.slice(0, MAX_MEMBER_NAME)}…` : name;
}

/** `<name>.ova.sha256` beside the OVA, when present, must be `sha256sum -c` format and match. */
async function checkSumFile(target: string, sha256: string): Promise<Finding[]> {
  const sumPath = `${target}.sha256`;
  const name = basename(sumPath);
  const st = await stat(sumPath).catch(() => undefined);
  if (!st?.isFile()) return [];
  if (st.size > MAX_SUM_FILE_BYTES) return [finding("SHA256_FILE_FORMAT", `${name} is ${st.size} bytes, not one "<hex>  <name>" line`, name)];
  let text: string;
  try {
    text = await readFile(sumPath, "utf8");
  } catch {
    return [];
  }
  const m = /^([0-9a-fA-F]{64}) [ *](.+)\n?$/.exec(text);
  if (!m) return [finding("SHA256_FILE_FORMAT", `${name} is not "<hex>  <name>" (sha256sum -c format)`, name)];
  const out: Finding[] = [];
  if (m[2] !== basename(target)) out.push(finding("SHA256_FILE_NAME", `${name} names ${m[2]}, not ${basename(target)}`, name));
  if (m[1]!.toLowerCase() !== sha256) out.push(finding("SHA256_FILE_MISMATCH", `${name} says ${m[1]}, the OVA's SHA-256 is ${sha256}`, name));
  return out;
}

async function verifyDirectory(target: string, isDir: boolean, signal: AbortSignal): Promise<Partial> {
  const dir = isDir ? target : dirname(target);
  const ovfName = isDir ? await findSingleOvf(dir) : basename(target);
  const ovfPath = join(dir, ovfName);
  const ovfSize = await stat(ovfPath).then(
    (s) => s.size,
    (err: Error) => {
      throw new UserError("VERIFY_UNREADABLE", `${ovfPath}: ${err.message}`, { cause: err });
    },
  );
  if (ovfSize > MAX_OVF_BYTES) throw new UserError("VERIFY_UNREADABLE", `${ovfPath}: ${ovfSize} bytes, larger than the ${MAX_OVF_BYTES}-byte limit for an OVF descriptor`);
  const ovfText = await readFile(ovfPath, "utf8").catch((err: Error) => {
    throw new UserError("VERIFY_UNREADABLE", `${ovfPath}: ${err.message}`, { cause: err });
  });
  const findings: Finding[] = [];
  const mfName = ovfName.replace(/\.ovf$/i, "") + ".mf";
  const mfSize = await stat(join(dir, mfName)).then((s) => s.size, () => undefined);
  let mfText: string | undefined;
  if (mfSize !== undefined && mfSize > MAX_MF_BYTES) findings.push(finding("MF_TOO_LARGE", `${mfName} is ${mfSize} bytes, larger than the ${MAX_MF_BYTES}-byte limit; not read`, mfName));
  else mfText = await readFile(join(dir, mfName), "utf8").catch(() => undefined);
  const mf = mfText === undefined ? undefined : parseManifest(mfText);
  const algosFor = (name: string): MfAlgorithm[] => ["sha256", ...(mf?.entries.filter((e) => e.file === name).map((e) => e.algorithm) ?? [])];
  const ovfDigests = await digestFile(ovfPath, algosFor(ovfName), { signal });
  const files: PackageFile[] = [{ name: ovfName, size: ovfDigests.size, digests: ovfDigests.digests }];
  // Only referenced files are part of a directory package; read each once, and never through a
  // symlink that leads out of the directory (its digest would describe a file elsewhere).
  let hrefs: string[] = [];
  try {
    hrefs = (await parseOvf(ovfText)).files.map((f) => f.href).filter((h) => h && !h.includes("/") && h !== "." && h !== "..");
  } catch {
    hrefs = [];
  }
  const dirReal = await realpath(dir);
  for (const href of new Set(hrefs)) {
    const p = join(dir, href);
    const l = await lstat(p).catch(() => undefined);
    if (l?.isSymbolicLink()) {
      const real = await realpath(p).catch(() => undefined);
      const rel = real === undefined ? ".." : relative(dirReal, real);
      if (rel === ".." || rel.startsWith(`..${sep}`) || rel.startsWith(sep)) {
        findings.push(finding("MEMBER_LINK", `${href} is a symbolic link to ${real ?? "nothing"}, outside the directory; not read`, href));
        continue;
      }
    }
    const s = await stat(p).catch(() => undefined);
    if (!s?.isFile()) continue; // reported as OVF_FILE_MISSING by the rules
    const d = await digestFile(p, algosFor(href), { signal });
    files.push({ name: href, size: d.size, digests: d.digests });
  }
  const input = { ovfName, ovfText, files, ...(mfText !== undefined ? { mfText, mfName } : {}) };
  findings.push(...(await checkPackage(input)).findings);
  const members: VerifyMember[] = files.map((f) => ({ name: f.name, type: "file", size: f.size, sha256: f.digests.sha256! }));
  if (mfText !== undefined) members.splice(1, 0, { name: mfName, type: "file", size: Buffer.byteLength(mfText) });
  return { kind: "directory", findings, members };
}

export async function findSingleOvf(dir: string): Promise<string> {
  const names = await readdir(dir).catch((err: Error) => {
    throw new UserError("VERIFY_UNREADABLE", `${dir}: ${err.message}`, { cause: err });
  });
  const ovfs = names.filter((n) => /\.ovf$/i.test(n)).sort();
  if (ovfs.length !== 1) {
    throw new UserError("OVF_NOT_FOUND", `${dir}: expected exactly one .ovf file, found ${ovfs.length ? ovfs.join(", ") : "none"}`);
  }
  return ovfs[0]!;
}

function strip(ms: Array<VerifyMember & { index: number }>): VerifyMember[] {
  return ms.map(({ index: _index, ...rest }) => rest);
}
