// Where the VM goes: datacenter, compute (cluster or host), resource pool, folder, datastore and
// network, each by name (relative to its datacenter folder) or by absolute inventory path
// ("/DC0/host/Cluster/Resources/pool"). Paths are built by pure functions; SearchIndex
// FindByInventoryPath resolves them.
import { UserError } from "../../src/errors.js";
import { refOf, type MoRef } from "./soap.js";
import type { VimSession } from "./session.js";
import type { VsphereSpec } from "../../src/template/spec.js";

/** Where a VM goes: the template's placement fields, each a name or an inventory path. */
export type PlacementSpec = Pick<VsphereSpec, "datacenter" | "cluster" | "host" | "resourcePool" | "folder" | "datastore" | "network">;

export interface Placement {
  datacenter: MoRef;
  datacenterPath: string;
  datacenterName: string;
  folder: MoRef;
  pool: MoRef;
  host: MoRef | undefined;
  datastore: MoRef;
  datastoreName: string;
  network: MoRef | undefined;
  networkName: string | undefined;
}

type Kind = "host" | "vm" | "datastore" | "network";

/** "/DC0" for "DC0" or "/DC0"; nested datacenter folders are written as paths ("/Folder/DC0"). */
export function datacenterPath(name: string): string {
  return "/" + name.replace(/^\/+|\/+$/g, "");
}

/**
 * The inventory path of a named object: an absolute path is taken as written; a name or relative
 * path goes under the datacenter's folder for its kind (host, vm, datastore, network).
 */
export function inventoryPath(dcPath: string, kind: Kind, nameOrPath: string): string {
  if (nameOrPath.startsWith("/")) return nameOrPath.replace(/\/+$/, "");
  const rel = nameOrPath.replace(/^\.?\/+|\/+$/g, "");
  return `${dcPath}/${kind}${rel ? "/" + rel : ""}`;
}

/** Path of the compute resource (cluster, or a standalone host's compute resource) to place on. */
export function computePath(dcPath: string, p: Pick<PlacementSpec, "cluster" | "host">): string | undefined {
  if (p.cluster) return inventoryPath(dcPath, "host", p.cluster);
  if (p.host) return inventoryPath(dcPath, "host", p.host);
  return undefined;
}

/** Path of a host inside a cluster, or a standalone host (whose compute resource has its name). */
export function hostPath(dcPath: string, p: Pick<PlacementSpec, "cluster" | "host">): string | undefined {
  if (!p.host) return undefined;
  if (p.host.startsWith("/")) return p.host;
  if (p.cluster) return `${inventoryPath(dcPath, "host", p.cluster)}/${p.host}`;
  return `${inventoryPath(dcPath, "host", p.host)}/${p.host}`;
}

/** Path of the resource pool; undefined means the compute resource's root pool. */
export function poolPath(dcPath: string, p: Pick<PlacementSpec, "cluster" | "host" | "resourcePool">): string | undefined {
  if (!p.resourcePool) return undefined;
  if (p.resourcePool.startsWith("/")) return p.resourcePool;
  const compute = computePath(dcPath, p);
  if (!compute) throw new UserError("VSPHERE_PLACEMENT", "drivers.vsphere.resource_pool: a pool name needs cluster or host (or give the pool's full inventory path)");
  return `${compute}/Resources/${p.resourcePool.replace(/^\/+|\/+$/g, "")}`;
}

/** The last path element (what vSphere shows as the object's name). */
export function leafName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}

export async function resolvePlacement(s: VimSession, p: PlacementSpec, signal: AbortSignal): Promise<Placement> {
  const find = async (field: string, path: string): Promise<MoRef> => {
    const ref = await s.findByInventoryPath(path, signal);
    if (!ref) throw new UserError("VSPHERE_NOT_FOUND", `drivers.vsphere.${field}: ${path} not found`);
    return ref;
  };

  let dcName = p.datacenter;
  if (!dcName) {
    // Exactly one datacenter at the root: take it; otherwise the user must say which.
    const entities = (await s.prop(s.sc.rootFolder, "childEntity", signal))?.children ?? [];
    const dcs = entities.filter((e) => e.attrs.type === "Datacenter");
    if (dcs.length !== 1) throw new UserError("VSPHERE_PLACEMENT", `drivers.vsphere.datacenter: required (the server has ${dcs.length} datacenters at its root)`);
    dcName = (await s.prop(refOf(dcs[0])!, "name", signal))?.text ?? "";
  }
  const dcPath = datacenterPath(dcName);
  const datacenter = await find("datacenter", dcPath);

  const folder = await find("folder", inventoryPath(dcPath, "vm", p.folder ?? ""));

  let pool: MoRef;
  let host: MoRef | undefined;
  const hp = hostPath(dcPath, p);
  if (hp) host = await find("host", hp);
  const pp = poolPath(dcPath, p);
  if (pp) pool = await find("resource_pool", pp);
  else {
    let compute = computePath(dcPath, p);
    if (!compute) {
      // No cluster/host given: the datacenter's only compute resource.
      const list = (await s.prop(await find("cluster", `${dcPath}/host`), "childEntity", signal))?.children ?? [];
      const computes = list.filter((e) => /ComputeResource$/.test(e.attrs.type ?? ""));
      if (computes.length !== 1) throw new UserError("VSPHERE_PLACEMENT", `drivers.vsphere.cluster: required (datacenter ${dcName} has ${computes.length} clusters/hosts)`);
      compute = `${dcPath}/host/${(await s.prop(refOf(computes[0])!, "name", signal))?.text ?? ""}`;
    }
    const cr = await find(p.cluster ? "cluster" : "host", compute);
    const rp = refOf(await s.prop(cr, "resourcePool", signal));
    if (!rp) throw new UserError("VSPHERE_PLACEMENT", `drivers.vsphere: ${compute} has no resource pool`);
    pool = rp;
  }

  let datastoreName = p.datastore;
  if (!datastoreName) {
    const list = (await s.prop(datacenter, "datastore", signal))?.children ?? [];
    if (list.length !== 1) throw new UserError("VSPHERE_PLACEMENT", `drivers.vsphere.datastore: required (datacenter ${dcName} has ${list.length} datastores)`);
    datastoreName = (await s.prop(refOf(list[0])!, "name", signal))?.text ?? "";
  }
  const datastore = await find("datastore", inventoryPath(dcPath, "datastore", datastoreName));
  let network: MoRef | undefined;
  if (p.network) network = await find("network", inventoryPath(dcPath, "network", p.network));
  return {
    datacenter,
    datacenterPath: dcPath,
    datacenterName: leafName(dcPath),
    folder,
    pool,
    host,
    datastore,
    datastoreName: leafName(datastoreName),
    network,
    networkName: p.network ? leafName(p.network) : undefined,
  };
}

/** `[datastore] path` */
export function dsPath(datastore: string, path: string): string {
  return `[${datastore}] ${path}`;
}
