// drivers.vsphere (raw, snake_case) → VsphereSpec. Credentials fall back to VSPHERE_USERNAME /
// VSPHERE_PASSWORD so templates need not carry them (the driver registers them as secrets).
import type { RawTemplate } from "./schema.js";
import type { VsphereSpec } from "./spec.js";

type RawVsphere = NonNullable<NonNullable<RawTemplate["drivers"]["vsphere"]>>;

/** `name` is the build's: the default name of the library item after: library creates. */
export function normalizeVsphere(v: RawVsphere, local: (p: string) => string, name: string, env: NodeJS.ProcessEnv = process.env): VsphereSpec {
  const dest = v.library_destination;
  return {
    url: v.url,
    username: v.username ?? env.VSPHERE_USERNAME,
    password: v.password ?? env.VSPHERE_PASSWORD,
    datacenter: v.datacenter,
    cluster: v.cluster,
    host: v.host,
    resourcePool: v.resource_pool,
    folder: v.folder,
    datastore: v.datastore,
    network: v.network,
    caFile: v.ca_file === undefined ? undefined : local(v.ca_file),
    insecure: v.insecure ?? false,
    cpus: v.cpus ?? 2,
    memory: v.memory ?? 1024,
    diskSize: v.disk_size,
    guestOsType: v.guest_os_type ?? "otherLinux64Guest",
    firmware: v.firmware ?? "bios",
    after: v.after ?? "export",
    stageClone: v.stage_clone ?? "full",
    libraryDestination: dest ? { library: dest.library, name: dest.name ?? name, description: dest.description ?? "" } : undefined,
    isoCacheFolder: v.iso_cache_folder ?? "vmkiln-cache",
    sshHost: v.ssh_host,
    sshPort: v.ssh_port,
    ipv6: v.ipv6 ?? false,
    ipWaitTimeoutMs: v.ip_wait_timeout ?? 30 * 60_000,
  };
}
