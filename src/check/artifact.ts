// What `vmkiln test` boots: a qcow2, raw or VMDK file as it is, or the VMDK inside an OVA where it
// lies in the archive (QEMU reads it through a raw layer at that offset, so the OVA is never
// unpacked to a second copy), and the build's manifest.json beside it when there is one (the
// first-boot checks compare the booted image with what the build recorded).
import { open, readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { imageInfo, sliceFilename } from "../artifact/qemu-img.js";
import { parseOvf } from "../artifact/ovf-parse.js";
import { tarIndex } from "../artifact/tar-index.js";
import type { BuildIdentity } from "../artifact/manifest.js";

export interface TestArtifact {
  /** As given (absolute). */
  path: string;
  kind: "qcow2" | "raw" | "vmdk" | "ova";
  /** The disk QEMU boots: the file itself, or the OVA with the member's byte range. */
  disk: { path: string; format: "qcow2" | "raw" | "vmdk"; slice?: { offset: number; size: number; member: string } };
  /** The disk's virtual size (bytes). */
  virtualSize: number;
  /** From manifest.json beside the artifact, when it lists this artifact. */
  identity?: BuildIdentity | undefined;
  manifestPath?: string | undefined;
}

async function magic(path: string): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Detects the artifact's kind from its content (qcow2 and VMDK magic, a tar header), not its name. */
export async function resolveArtifact(given: string, signal: AbortSignal, manifestOverride?: string): Promise<TestArtifact> {
  const path = resolve(given);
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new UserError("ARTIFACT_UNREADABLE", `${given}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  });
  if (!st.isFile()) throw new UserError("ARTIFACT_UNREADABLE", `${given}: not a regular file`);
  const head = await magic(path);
  let art: TestArtifact;
  if (head.subarray(0, 4).toString("latin1") === "QFI\xfb") {
    const info = await imageInfo(path, signal, "qcow2");
    if (info.backingFile) throw new UserError("ARTIFACT_HAS_BACKING", `${given}: a qcow2 with a backing file (${info.backingFile}) is not a standalone artifact`);
    art = { path, kind: "qcow2", disk: { path, format: "qcow2" }, virtualSize: info.virtualSize };
  } else if (head.subarray(0, 4).toString("latin1") === "KDMV") {
    const info = await imageInfo(path, signal, "vmdk");
    art = { path, kind: "vmdk", disk: { path, format: "vmdk" }, virtualSize: info.virtualSize };
  } else if (head.length >= 512 && head.subarray(257, 262).toString("latin1") === "ustar") {
    art = await ovaArtifact(path, given, signal);
  } else if (/\.(img|raw)$/i.test(path)) {
    art = { path, kind: "raw", disk: { path, format: "raw" }, virtualSize: st.size };
  } else {
    throw new UserError("ARTIFACT_UNKNOWN", `${given}: not a qcow2, VMDK or OVA (by its content), nor a raw image named *.raw or *.img`);
  }
  const found = await readIdentity(path, manifestOverride);
  return { ...art, ...found };
}

async function ovaArtifact(path: string, given: string, signal: AbortSignal): Promise<TestArtifact> {
  const members = (await tarIndex(path)).filter((m) => m.type === "0" || m.type === "\0");
  const ovf = members.find((m) => /\.ovf$/i.test(m.name));
  let diskName: string | undefined;
  if (ovf) {
    if (ovf.size > 32 * 1024 * 1024) throw new UserError("OVA_BAD_OVF", `${given}: ${ovf.name} is larger than 32 MiB`);
    const fh = await open(path, "r");
    let xml: string;
    try {
      const b = Buffer.alloc(ovf.size);
      await fh.read(b, 0, ovf.size, ovf.offset);
      xml = b.toString("utf8");
    } finally {
      await fh.close();
    }
    const parsed = await parseOvf(xml).catch((err: unknown) => {
      throw new UserError("OVA_BAD_OVF", `${given}: ${ovf.name}: ${(err as Error).message}`);
    });
    // The first virtual disk's file (OVF DiskSection Disk ovf:fileRef → References File ovf:href).
    const ref = parsed.disks[0]?.fileRef;
    diskName = parsed.files.find((f) => f.id === ref)?.href;
  }
  const vmdks = members.filter((m) => /\.vmdk$/i.test(m.name));
  const member = diskName ? members.find((m) => m.name === diskName) : vmdks.length === 1 ? vmdks[0] : undefined;
  if (!member) {
    throw new UserError("OVA_NO_DISK", `${given}: ${diskName ? `the OVF's first disk ${diskName} is not in the archive` : `no OVF naming its disk and ${vmdks.length} VMDK members`}`);
  }
  const slice = { offset: member.offset, size: member.size, member: member.name };
  const info = await imageInfo(sliceFilename(path, "vmdk", slice), signal, "vmdk").catch((err: unknown) => {
    throw new UserError("OVA_BAD_DISK", `${given}: ${member.name} is not a VMDK QEMU can read: ${(err as Error).message.split("\n")[0]}`);
  });
  return { path, kind: "ova", disk: { path, format: "vmdk", slice }, virtualSize: info.virtualSize };
}

async function readIdentity(artifact: string, manifestOverride: string | undefined): Promise<{ identity?: BuildIdentity; manifestPath?: string }> {
  const manifestPath = manifestOverride ? resolve(manifestOverride) : join(dirname(artifact), "manifest.json");
  let text: string;
  try {
    text = await readFile(manifestPath, "utf8");
  } catch (err) {
    if (manifestOverride) throw new UserError("MANIFEST_UNREADABLE", `--manifest ${manifestOverride}: ${(err as Error).message}`);
    return {};
  }
  let m: { artifacts?: Array<{ name: string }>; build_identity?: BuildIdentity };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    throw new UserError("MANIFEST_UNREADABLE", `${manifestPath}: not JSON`);
  }
  // Only the manifest of this artifact's build speaks for it.
  if (!manifestOverride && !(m.artifacts ?? []).some((a) => a.name === basename(artifact))) return {};
  return { manifestPath, ...(m.build_identity ? { identity: m.build_identity } : {}) };
}
