// The vSphere Automation REST API, where it serves: the session and content-library lookups (ISOs
// kept in a library). vCenter 7.0U2+ has `/api`; older vCenters only the legacy `/rest` (bodies
// wrapped in {"spec": …} / {"value": …}); standalone ESXi has neither, so the driver treats REST as
// optional and does everything else over SOAP (see README "vSphere").
import { request, type Dispatcher } from "undici";
import { BuildError, UserError, asAbortError } from "../../src/errors.js";

export type RestFlavor = "api" | "rest";

export class RestSession {
  private constructor(
    private readonly origin: URL,
    private readonly dispatcher: Dispatcher,
    readonly flavor: RestFlavor,
    private readonly token: string,
  ) {}

  /** Logs in with /api/session, else the legacy /rest session; undefined when neither exists (ESXi). */
  static async login(origin: URL, dispatcher: Dispatcher, username: string, password: string, signal: AbortSignal): Promise<RestSession | undefined> {
    const auth = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
    for (const [flavor, path] of [["api", "/api/session"], ["rest", "/rest/com/vmware/cis/session"]] as const) {
      const res = await send(origin, dispatcher, "POST", path, { authorization: auth }, undefined, signal);
      if (res.status === 404) continue;
      if (res.status === 401 || res.status === 403) throw new UserError("VSPHERE_LOGIN", `drivers.vsphere: REST login as ${username} failed (HTTP ${res.status})`);
      if (res.status >= 300) throw new BuildError("VSPHERE_REST", `POST ${path}: HTTP ${res.status}`);
      const token = flavor === "api" ? (res.json as string) : (res.json as { value: string }).value;
      if (typeof token !== "string") throw new BuildError("VSPHERE_REST", `POST ${path}: no session token in the answer`);
      return new RestSession(origin, dispatcher, flavor, token);
    }
    return undefined;
  }

  private async call(method: string, api: string, legacy: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    const path = this.flavor === "api" ? api : legacy;
    const payload = body === undefined ? undefined : this.flavor === "api" ? body : { spec: body };
    const res = await send(this.origin, this.dispatcher, method, path, { "vmware-api-session-id": this.token }, payload, signal);
    if (res.status >= 300) throw new BuildError("VSPHERE_REST", `${method} ${path}: HTTP ${res.status}`);
    return this.flavor === "api" ? res.json : (res.json as { value?: unknown } | undefined)?.value;
  }

  /** Content-library item ids with this name (optionally in one library). */
  async findLibraryItems(name: string, signal: AbortSignal): Promise<string[]> {
    const r = await this.call("POST", "/api/content/library/item?action=find", "/rest/com/vmware/content/library/item?~action=find", { name }, signal);
    return Array.isArray(r) ? (r as string[]) : [];
  }

  /** Storage URIs (ds:///vmfs/volumes/…) of a library item's files. */
  async libraryItemStorage(itemId: string, signal: AbortSignal): Promise<Array<{ name: string; uris: string[] }>> {
    const q = encodeURIComponent(itemId);
    const r = await this.call("GET", `/api/content/library/item/${q}/storage`, `/rest/com/vmware/content/library/item/storage?library_item_id=${q}`, undefined, signal);
    return ((r as Array<{ name: string; storage_uris?: string[] }>) ?? []).map((f) => ({ name: f.name, uris: f.storage_uris ?? [] }));
  }

  async logout(): Promise<void> {
    const signal = AbortSignal.timeout(10_000);
    await this.call("DELETE", "/api/session", "/rest/com/vmware/cis/session", undefined, signal).catch(() => undefined);
  }
}

/** Maps a library storage URI onto `[datastore] path` using the datastores' summary.url values. */
export function storageUriToDsPath(uri: string, datastores: Array<{ name: string; url: string }>): string | undefined {
  for (const ds of datastores) {
    const base = ds.url.endsWith("/") ? ds.url : ds.url + "/";
    if (uri.startsWith(base)) return `[${ds.name}] ${decodeURIComponent(uri.slice(base.length))}`;
  }
  return undefined;
}

async function send(
  origin: URL,
  dispatcher: Dispatcher,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<{ status: number; json: unknown }> {
  try {
    const res = await request(new URL(path, origin), {
      method: method as Dispatcher.HttpMethod,
      dispatcher,
      signal,
      headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json };
  } catch (err) {
    if (signal.aborted) throw asAbortError(signal.reason);
    throw err;
  }
}
