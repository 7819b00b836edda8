// The OVA writer: a GNU tar with the OVF first, then the .mf, then the disks in References order
// (ova.md "Tar"; bottlerocket PR 1719, osbuild/image-builder 431: vSphere URL import, ovftool and
// Workstation fail when the OVF is not first), plus `<name>.ova.sha256` in `sha256sum -c` format
// (hashicorp/packer 5442).
//
// Each disk is read exactly once here: its bytes go from one read stream into the tar while the OVA's
// hash (for .ova.sha256) runs. The digest the caller put in the .mf must describe those bytes: when
// vmkiln computed it itself (when the VMDK was produced, see vmdk.ts for why it must exist
// beforehand) the file's identity (inode, size, mtime, ctime) is compared before and after packing;
// a digest from elsewhere (pack-ova trusting a source manifest) is checked by hashing the disk again
// on the fly. A mismatch means the file changed since: the partial OVA is deleted. Each chunk is
// written before the next is read or produced, so memory stays flat (~1 MiB chunks) whatever the
// disk size.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, rm, stat } from "node:fs/promises";
import { basename } from "node:path";
import { BuildError, asAbortError, throwIfAborted } from "../errors.js";
import { progressReporter, type EventBus } from "../log/events.js";
import { READ_CHUNK, fileIdentity, sameIdentity, sha256Hex, type FileIdentity } from "./digest.js";
import { formatManifest } from "./manifest-mf.js";
import { certName, certificateFileText, type OvaSigner } from "./ova-sign.js";
import { END_OF_ARCHIVE, checkMemberName, encodeGnuHeader, paddingFor } from "./tar-header.js";
import { DestinationExistsError, createTempBeside, publishFile } from "../util/atomic.js";
import { writeAllAt } from "../util/write-all.js";

export interface OvaDisk {
  /** Member name (bare basename, as in the OVF's File ovf:href). */
  name: string;
  /** The disk file; or, for a disk produced on the fly, `stream` instead (see below). */
  path?: string;
  /**
   * The disk's bytes produced while packing (vmkiln's VMDK writer, vmdk/export.ts): no file exists.
   * `size` and `sha256` were computed by an earlier pass over the same bytes, so the member is
   * hashed again as it is packed and its length counted: any difference deletes the partial OVA.
   * A chunk's bytes are written to the OVA before the next chunk is asked for, so the producer may
   * reuse a chunk's buffer from then on (vmdk/stream.ts ChunkPool).
   */
  stream?: (signal: AbortSignal) => AsyncIterable<Buffer>;
  /** Lowercase hex SHA-256 of the file, known before packing (goes into the .mf). */
  sha256: string;
  size: number;
  /**
   * The file's identity when vmkiln computed `sha256` itself (digestFile): then an unchanged
   * identity before and after packing proves the packed bytes are the hashed ones, and the second
   * SHA-256 pass is skipped (~15% of a pack where writing is not the bottleneck). Without it (a digest
   * taken from someone else's manifest) the bytes are hashed again while they are packed.
   */
  identity?: FileIdentity | undefined;
}

export interface WriteOvaOptions {
  out: string;
  ovfName: string;
  ovfXml: string;
  disks: OvaDisk[];
  events: EventBus;
  signal: AbortSignal;
  /** Member mtime (seconds); defaults to SOURCE_DATE_EPOCH or now. */
  mtime?: number;
  /** Sign the manifest: a `<name>.cert` member follows the .mf (ova-sign.ts). */
  sign?: OvaSigner | undefined;
  /**
   * Replace an existing `out` (and `out.sha256`). Without it an existing file is never replaced:
   * publishing fails with DestinationExistsError (pack-ova's --force sets it).
   */
  replace?: boolean;
}

export interface WriteOvaResult {
  path: string;
  size: number;
  sha256: string;
  durationMs: number;
  /** Member names in tar order. */
  members: string[];
}

/** Thrown when a disk's bytes do not match the digest written in the .mf. */
export class DigestMismatchError extends BuildError {
  constructor(
    readonly member: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super("DIGEST_MISMATCH", `${member}: SHA-256 is ${actual}, but the manifest says ${expected} (the file changed or the manifest is wrong)`);
  }
}

export function manifestName(ovfName: string): string {
  return ovfName.replace(/\.ovf$/i, "") + ".mf";
}

export async function writeOva(opts: WriteOvaOptions): Promise<WriteOvaResult> {
  const { out, ovfName, disks, events, signal } = opts;
  const started = Date.now();
  throwIfAborted(signal);
  const ovf = Buffer.from(opts.ovfXml, "utf8");
  const mfName = manifestName(ovfName);
  const mf = Buffer.from(
    formatManifest([{ name: ovfName, sha256: sha256Hex(ovf) }, ...disks.map((d) => ({ name: d.name, sha256: d.sha256 }))]),
    "utf8",
  );
  const cert = opts.sign ? { name: certName(ovfName), data: Buffer.from(certificateFileText(opts.sign, mfName, mf), "utf8") } : undefined;
  const names = [ovfName, mfName, ...(cert ? [cert.name] : []), ...disks.map((d) => d.name)];
  checkNames(names, ovfName);
  const mtime = opts.mtime ?? (Number(process.env["SOURCE_DATE_EPOCH"]) || Math.floor(Date.now() / 1000));

  const sumFile = `${out}.sha256`;
  const temps: string[] = [];
  const ovaHash = createHash("sha256");
  let written = 0;
  const total = 3 * 512 + ovf.length + mf.length + (cert ? 512 + cert.data.length + paddingFor(cert.data.length).length : 0) + disks.reduce((n, d) => n + 512 + d.size + 512, 1024);
  const progress = progressReporter(events, `pack ${basename(out)}`, total);

  function* emit(buf: Buffer): Generator<Buffer> {
    if (buf.length === 0) return;
    ovaHash.update(buf);
    written += buf.length;
    progress.add(buf.length);
    yield buf;
  }
  function* member(name: string, data: Buffer): Generator<Buffer> {
    yield* emit(encodeGnuHeader({ name, size: data.length, mtime }));
    yield* emit(data);
    yield* emit(paddingFor(data.length));
  }
  async function* streamedMember(d: OvaDisk, produce: NonNullable<OvaDisk["stream"]>): AsyncGenerator<Buffer> {
    yield* emit(encodeGnuHeader({ name: d.name, size: d.size, mtime }));
    const diskHash = createHash("sha256");
    let seen = 0;
    for await (const chunk of produce(signal)) {
      seen += chunk.length;
      // Checked before the bytes go out: more than the header declared would corrupt the tar.
      if (seen > d.size) throw new BuildError("DISK_SIZE_CHANGED", `${d.name}: produced more than the ${d.size} bytes measured`);
      diskHash.update(chunk);
      yield* emit(chunk);
    }
    if (seen !== d.size) throw new BuildError("DISK_SIZE_CHANGED", `${d.name}: expected ${d.size} bytes, produced ${seen}`);
    const actual = diskHash.digest("hex");
    if (actual !== d.sha256.toLowerCase()) throw new DigestMismatchError(d.name, d.sha256.toLowerCase(), actual);
    yield* emit(paddingFor(d.size));
  }
  async function* diskMember(d: OvaDisk): AsyncGenerator<Buffer> {
    if (d.stream) return yield* streamedMember(d, d.stream);
    if (d.path === undefined) throw new BuildError("OVA_DISK", `${d.name}: neither a file nor a stream`);
    const path = d.path;
    yield* emit(encodeGnuHeader({ name: d.name, size: d.size, mtime }));
    const diskHash = d.identity ? undefined : createHash("sha256");
    if (d.identity) await checkIdentity(d, d.identity);
    let seen = 0;
    // `end` bounds the read at the declared size: a file that grew would otherwise corrupt the tar.
    const rs = createReadStream(path, { highWaterMark: READ_CHUNK, end: d.size === 0 ? undefined : d.size - 1, signal });
    if (d.size > 0) {
      for await (const chunk of rs as AsyncIterable<Buffer>) {
        diskHash?.update(chunk);
        seen += chunk.length;
        yield* emit(chunk);
      }
    } else rs.destroy();
    if (seen !== d.size) throw new BuildError("DISK_SIZE_CHANGED", `${path}: expected ${d.size} bytes, read ${seen}`);
    if (d.identity) await checkIdentity(d, d.identity);
    else {
      const actual = diskHash!.digest("hex");
      if (actual !== d.sha256.toLowerCase()) throw new DigestMismatchError(d.name, d.sha256.toLowerCase(), actual);
    }
    yield* emit(paddingFor(d.size));
  }
  async function* archive(): AsyncGenerator<Buffer> {
    yield* member(ovfName, ovf);
    yield* member(mfName, mf);
    if (cert) yield* member(cert.name, cert.data);
    for (const d of disks) yield* diskMember(d);
    yield* emit(END_OF_ARCHIVE);
  }

  try {
    for (const d of disks) {
      if (d.path === undefined) continue;
      const st = await stat(d.path);
      if (st.size !== d.size) throw new BuildError("DISK_SIZE_CHANGED", `${d.path}: has ${st.size} bytes, expected ${d.size}`);
    }
    // Temp files are created exclusively under unpredictable names (a planted `x.ova.partial`
    // symlink is never written through) and only published once complete.
    const ova = await createTempBeside(out);
    temps.push(ova.path);
    // Written here rather than through a write stream: each buffer is on disk (in the page cache)
    // before the next is asked for, which is what lets a disk's producer reuse its chunk buffers.
    try {
      let at = 0;
      for await (const buf of archive()) {
        throwIfAborted(signal);
        await writeAllAt(ova.fh, buf, at);
        at += buf.length;
      }
    } finally {
      await ova.fh.close();
    }
    const sha256 = ovaHash.digest("hex");
    const sum = await createTempBeside(sumFile);
    temps.push(sum.path);
    try {
      await sum.fh.writeFile(`${sha256}  ${basename(out)}\n`);
    } finally {
      await sum.fh.close();
    }
    // Both names are checked before either is published, so a refusal leaves no OVA without its sum.
    if (!opts.replace && (await lstat(sumFile).then(() => true, () => false))) throw new DestinationExistsError(sumFile);
    await publishFile(ova.path, out, { replace: opts.replace ?? false });
    temps.shift();
    await publishFile(sum.path, sumFile, { replace: opts.replace ?? false });
    temps.shift();
    const result = { path: out, size: written, sha256, durationMs: Date.now() - started, members: names };
    return result;
  } catch (err) {
    for (const p of temps) await rm(p, { force: true });
    if (signal.aborted) throw asAbortError(signal.reason);
    throw err;
  } finally {
    progress.end();
  }
}

async function checkIdentity(d: OvaDisk, hashed: FileIdentity): Promise<void> {
  if (!sameIdentity(await fileIdentity(d.path!), hashed)) {
    throw new BuildError("DISK_CHANGED", `${d.path} changed after its SHA-256 was taken for the manifest: refusing to pack it`);
  }
}

function checkNames(names: string[], ovfName: string): void {
  if (!/\.ovf$/i.test(ovfName)) throw new BuildError("OVA_MEMBER_NAME", `OVF member ${ovfName} must end in .ovf`);
  const seen = new Set<string>();
  for (const n of names) {
    const problem = checkMemberName(n);
    if (problem) throw new BuildError("OVA_MEMBER_NAME", `OVA member ${JSON.stringify(n)}: ${problem}`);
    if (seen.has(n)) throw new BuildError("OVA_MEMBER_NAME", `OVA member ${n} appears twice`);
    seen.add(n);
  }
}
