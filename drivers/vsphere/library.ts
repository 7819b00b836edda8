// Content libraries over REST: find a library and an item by name, list an item's files on their
// datastore (an ISO is attached from there, as Packer's iso_paths "Library/Item" does), deploy an
// OVF template item as a VM, capture a VM as an OVF template item, delete an item.
//
// The requests are pure functions of the REST flavor (unit-tested): `/api` (vCenter 7.0U2+) takes
// each operation's parameters as the body (a find's spec is the body itself); the legacy `/rest`
// takes them by name ({"spec": …} for a find, {"target", "deployment_spec"} for a deploy) and
// answers inside {"value": …}, which RestSession.send unwraps.
import { BuildError, UserError } from "../../src/errors.js";
import { RestError, type RestFlavor, type RestRequest, type RestSession } from "./rest.js";

/** OVF deploy and capture copy whole disks inside vSphere before they answer. */
const OVF_TIMEOUT_MS = 60 * 60_000;

const q = encodeURIComponent;

export const libraryRequests = {
  findLibrary(f: RestFlavor, name: string): RestRequest {
    return f === "api"
      ? { method: "POST", path: "/api/content/library?action=find", body: { name } }
      : { method: "POST", path: "/rest/com/vmware/content/library?~action=find", body: { spec: { name } } };
  },
  findItem(f: RestFlavor, libraryId: string, name: string): RestRequest {
    const spec = { library_id: libraryId, name };
    return f === "api"
      ? { method: "POST", path: "/api/content/library/item?action=find", body: spec }
      : { method: "POST", path: "/rest/com/vmware/content/library/item?~action=find", body: { spec } };
  },
  getItem(f: RestFlavor, itemId: string): RestRequest {
    return { method: "GET", path: f === "api" ? `/api/content/library/item/${q(itemId)}` : `/rest/com/vmware/content/library/item/id:${q(itemId)}` };
  },
  itemStorage(f: RestFlavor, itemId: string): RestRequest {
    return {
      method: "GET",
      path: f === "api" ? `/api/content/library/item/${q(itemId)}/storage` : `/rest/com/vmware/content/library/item/storage?library_item_id=${q(itemId)}`,
    };
  },
  deleteItem(f: RestFlavor, itemId: string): RestRequest {
    return { method: "DELETE", path: f === "api" ? `/api/content/library/item/${q(itemId)}` : `/rest/com/vmware/content/library/item/id:${q(itemId)}` };
  },
  /** Which networks the OVF names (to map them onto the build's network). */
  filterOvf(f: RestFlavor, itemId: string, target: DeployTarget): RestRequest {
    return { method: "POST", path: ovfItemPath(f, itemId, "filter"), body: { target: targetBody(target) } };
  },
  deployOvf(f: RestFlavor, itemId: string, target: DeployTarget, spec: DeploySpec): RestRequest {
    return {
      method: "POST",
      path: ovfItemPath(f, itemId, "deploy"),
      body: {
        target: targetBody(target),
        deployment_spec: {
          name: spec.name,
          accept_all_EULA: true,
          default_datastore_id: spec.datastoreId,
          ...(spec.networkMappings.length > 0 ? { network_mappings: spec.networkMappings.map(([key, value]) => ({ key, value })) } : {}),
        },
      },
      timeoutMs: OVF_TIMEOUT_MS,
    };
  },
  captureOvf(f: RestFlavor, c: { vmId: string; libraryId: string; name: string; description: string }): RestRequest {
    return {
      method: "POST",
      path: f === "api" ? "/api/vcenter/ovf/library-item" : "/rest/com/vmware/vcenter/ovf/library-item",
      body: {
        source: { type: "VirtualMachine", id: c.vmId },
        target: { library_id: c.libraryId },
        create_spec: { name: c.name, ...(c.description ? { description: c.description } : {}) },
      },
      timeoutMs: OVF_TIMEOUT_MS,
    };
  },
};

export interface DeployTarget {
  resourcePoolId: string;
  folderId: string | undefined;
  hostId: string | undefined;
}

export interface DeploySpec {
  name: string;
  datastoreId: string;
  /** [OVF network name, network moref value] */
  networkMappings: Array<[string, string]>;
}

function ovfItemPath(f: RestFlavor, itemId: string, action: "deploy" | "filter"): string {
  return f === "api" ? `/api/vcenter/ovf/library-item/${q(itemId)}?action=${action}` : `/rest/com/vmware/vcenter/ovf/library-item/id:${q(itemId)}?~action=${action}`;
}

function targetBody(t: DeployTarget): Record<string, string> {
  return { resource_pool_id: t.resourcePoolId, ...(t.folderId ? { folder_id: t.folderId } : {}), ...(t.hostId ? { host_id: t.hostId } : {}) };
}

export interface LibraryFile {
  name: string;
  /** Where the file is, e.g. ds:///vmfs/volumes/<uuid>/contentlib-<library>/<item>/<file>. */
  uris: string[];
}

export function parseIds(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

export function parseStorage(v: unknown): LibraryFile[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((f: { name?: unknown; storage_uris?: unknown }) =>
    typeof f?.name === "string" ? [{ name: f.name, uris: Array.isArray(f.storage_uris) ? f.storage_uris.filter((u): u is string => typeof u === "string") : [] }] : [],
  );
}

/** The first message of an OVF operation's error ({errors: [{error: {messages}} | {message}]}). */
function ovfErrorMessage(error: unknown): string | undefined {
  const errors = (error as { errors?: unknown } | undefined)?.errors;
  for (const e of Array.isArray(errors) ? errors : []) {
    const m = (e as { message?: { default_message?: unknown } }).message?.default_message ?? (e as { error?: { messages?: Array<{ default_message?: unknown }> } }).error?.messages?.[0]?.default_message;
    if (typeof m === "string") return m;
  }
  return undefined;
}

/** A deploy's answer → the new VM's moref value. */
export function parseDeployment(v: unknown, what: string): string {
  const d = v as { succeeded?: unknown; resource_id?: { type?: unknown; id?: unknown }; error?: unknown } | undefined;
  if (d?.succeeded === true && typeof d.resource_id?.id === "string") return d.resource_id.id;
  throw new BuildError("VSPHERE_OVF_DEPLOY", `deploying ${what} failed${ovfErrorMessage(d?.error) ? `: ${ovfErrorMessage(d?.error)}` : ""}`);
}

/** A capture's answer → the new library item's id. */
export function parseCreateResult(v: unknown, what: string): string {
  const r = v as { succeeded?: unknown; ovf_library_item_id?: unknown; error?: unknown } | undefined;
  if (r?.succeeded === true && typeof r.ovf_library_item_id === "string") return r.ovf_library_item_id;
  throw new BuildError("VSPHERE_OVF_CAPTURE", `capturing ${what} failed${ovfErrorMessage(r?.error) ? `: ${ovfErrorMessage(r?.error)}` : ""}`);
}

/** The networks a filter answer lists (vCenter: `networks`). */
export function parseOvfNetworks(v: unknown): string[] {
  const n = (v as { networks?: unknown } | undefined)?.networks;
  return Array.isArray(n) ? n.filter((x): x is string => typeof x === "string") : [];
}

/** The ISO among an item's files: the one ending in .iso (an ISO item has exactly that one). */
export function pickIsoFile(files: LibraryFile[]): LibraryFile | undefined {
  return files.find((f) => /\.iso$/i.test(f.name));
}

/** Content-library operations on one REST session; errors name the template field they serve. */
export class ContentLibrary {
  constructor(private readonly rest: RestSession) {}

  private send(req: RestRequest, signal: AbortSignal): Promise<unknown> {
    return this.rest.send(req, signal);
  }

  /** The id of the library with this name (names are unique per vCenter, but find matches case-insensitively). */
  async libraryId(name: string, field: string, signal: AbortSignal): Promise<string> {
    const ids = parseIds(await this.send(libraryRequests.findLibrary(this.rest.flavor, name), signal));
    if (ids.length === 0) throw new UserError("VSPHERE_LIBRARY_NOT_FOUND", `${field}: no content library named ${name}`);
    if (ids.length > 1) throw new UserError("VSPHERE_LIBRARY_AMBIGUOUS", `${field}: ${ids.length} content libraries are named ${name}`);
    return ids[0]!;
  }

  async findItems(libraryId: string, name: string, signal: AbortSignal): Promise<string[]> {
    return parseIds(await this.send(libraryRequests.findItem(this.rest.flavor, libraryId, name), signal));
  }

  /** The item `Library/Item` names: its id and type (iso, ovf, vm-template…). */
  async item(ref: { library: string; item: string }, field: string, signal: AbortSignal): Promise<{ id: string; type: string }> {
    const lib = await this.libraryId(ref.library, field, signal);
    const ids = await this.findItems(lib, ref.item, signal);
    if (ids.length === 0) throw new UserError("VSPHERE_LIBRARY_NOT_FOUND", `${field}: content library ${ref.library} has no item named ${ref.item}`);
    const info = (await this.send(libraryRequests.getItem(this.rest.flavor, ids[0]!), signal)) as { type?: unknown } | undefined;
    return { id: ids[0]!, type: typeof info?.type === "string" ? info.type.toLowerCase() : "" };
  }

  async storage(itemId: string, signal: AbortSignal): Promise<LibraryFile[]> {
    return parseStorage(await this.send(libraryRequests.itemStorage(this.rest.flavor, itemId), signal));
  }

  async ovfNetworks(itemId: string, target: DeployTarget, signal: AbortSignal): Promise<string[]> {
    return parseOvfNetworks(await this.send(libraryRequests.filterOvf(this.rest.flavor, itemId, target), signal));
  }

  async deploy(itemId: string, target: DeployTarget, spec: DeploySpec, what: string, signal: AbortSignal): Promise<string> {
    return parseDeployment(await this.send(libraryRequests.deployOvf(this.rest.flavor, itemId, target, spec), signal), what);
  }

  async capture(c: { vmId: string; libraryId: string; name: string; description: string }, what: string, signal: AbortSignal): Promise<string> {
    return parseCreateResult(await this.send(libraryRequests.captureOvf(this.rest.flavor, c), signal), what);
  }

  /** Deletes every item with this name in the library (cleanup of a capture; idempotent). */
  async deleteItemsNamed(libraryId: string, name: string, signal: AbortSignal): Promise<number> {
    const gone = (err: unknown) => {
      if (err instanceof RestError && err.status === 404) return undefined; // the library or item is gone already
      throw err;
    };
    const ids = (await this.findItems(libraryId, name, signal).catch(gone)) ?? [];
    for (const id of ids) await this.send(libraryRequests.deleteItem(this.rest.flavor, id), signal).catch(gone);
    return ids.length;
  }
}
