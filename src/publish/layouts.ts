// The two ways a disk goes into a registry.
//
// containerDisk (KubeVirt): an ordinary OCI image, one layer with the qcow2 under /disk/ owned by
// 107:107 (tar-layer.ts), and an image config naming os and architecture with the layer's diff_id,
// so KubeVirt (containerDisk volumes), CDI (registry imports), podman, skopeo and any container
// runtime take it as they take `FROM scratch` + `ADD --chown=107:107 disk.qcow2 /disk/`.
//
// OCI artifact: an image manifest with `artifactType` (OCI image-spec 1.1, manifest.md "Guidelines
// for Artifact Usage"): the config is not a runnable image config, so runtimes will not try to run
// it, and the one layer is the qcow2 itself, unwrapped, titled with its file name
// (`org.opencontainers.image.title`, which ORAS uses to name the file it pulls).
// Media types: `application/vnd.diskimage.qcow2` for artifactType and layer, as Konflux's
// build-vm-image task publishes qcow2 disks (its 0.3 changelog dropped ".gzip": a qcow2 compresses
// itself) and as podman/bootc users add ISOs (`podman manifest add --artifact --artifact-type
// application/vnd.diskimage.iso`). KubeVirt's proposal (VEP 256, kubevirt/enhancements#257) spells
// it `application/vnd.kubevirt.disk.qcow2`; there is no registered type yet, and the Konflux spelling
// is the one already in registries. The config, `application/vnd.vmkiln.disk.config.v1+json`, carries
// the platform fields under the names an image config uses (`architecture`, `os`) and never null
// (Konflux found `platform: null` breaks release tooling), plus the disk's format and virtual size.
import type { BlobSource } from "./blob.js";

export type Layout = "containerdisk" | "artifact";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
export const DISK_QCOW2 = "application/vnd.diskimage.qcow2";
export const DISK_CONFIG = "application/vnd.vmkiln.disk.config.v1+json";

export interface Platform {
  architecture: string;
  os: string;
}

export interface DiskInfo {
  /** File name of the disk (`name.qcow2`). */
  name: string;
  virtualSize: number | undefined;
  /** RFC 3339, the build's time (stable across pushes of the same build). */
  created: string;
}

const descriptor = (b: BlobSource, annotations?: Record<string, string>) => ({
  mediaType: b.mediaType,
  digest: b.digest,
  size: b.size,
  ...(annotations ? { annotations } : {}),
});

export function containerDiskConfig(layer: BlobSource, p: Platform, d: DiskInfo): Buffer {
  return json({
    created: d.created,
    architecture: p.architecture,
    os: p.os,
    config: { Labels: { "org.opencontainers.image.title": d.name, "io.vmkiln.disk.format": "qcow2" } },
    rootfs: { type: "layers", diff_ids: [layer.digest] },
    history: [{ created: d.created, created_by: `vmkiln push --as containerdisk (ADD --chown=107:107 ${d.name} /disk/)` }],
  });
}

export function artifactConfig(p: Platform, d: DiskInfo): Buffer {
  return json({
    architecture: p.architecture,
    os: p.os,
    created: d.created,
    disk: { format: "qcow2", name: d.name, ...(d.virtualSize !== undefined ? { virtual_size: d.virtualSize } : {}) },
  });
}

export function imageManifest(layout: Layout, config: BlobSource, layer: BlobSource, d: DiskInfo): Buffer {
  return json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(layout === "artifact" ? { artifactType: DISK_QCOW2 } : {}),
    config: descriptor(config),
    layers: [descriptor(layer, layout === "artifact" ? { "org.opencontainers.image.title": d.name } : undefined)],
    annotations: { "org.opencontainers.image.created": d.created, "org.opencontainers.image.title": d.name },
  });
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), "utf8");
}

/** Node's process.arch → the OCI/GOARCH name. */
export function ociArch(arch: string): string {
  const map: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  return map[arch] ?? arch;
}
