// Test-side content-library setup on vcsim through its legacy /rest API (what an admin does before
// a build uses the library): create a local library on a datastore, create an item, upload a file
// into it through an update session, list and read items. Not product code: the driver only reads
// libraries and captures into them (drivers/vsphere/library.ts).
import { readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { Agent, request } from "undici";

export interface LibraryAdmin {
  createLibrary(name: string, datastoreId: string): Promise<string>;
  createItem(libraryId: string, name: string, type: "iso" | "ovf"): Promise<string>;
  /** Uploads a local file into the item (update session, PUSH, complete). */
  upload(itemId: string, file: string): Promise<void>;
  findItems(libraryId: string, name: string): Promise<string[]>;
  item(itemId: string): Promise<{ id: string; name: string; type: string; library_id: string; description?: string }>;
  close(): Promise<void>;
}

export async function libraryAdmin(o: { url: string; caFile: string; username: string; password: string }): Promise<LibraryAdmin> {
  const origin = new URL(o.url).origin;
  const dispatcher = new Agent({ connect: { ca: readFileSync(o.caFile, "utf8") } });
  let token = "";
  const call = async (method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<unknown> => {
    const url = path.startsWith("https://") ? path : `${origin}/rest${path}`;
    const headers: Record<string, string> = token ? { "vmware-api-session-id": token } : { authorization: `Basic ${Buffer.from(`${o.username}:${o.password}`).toString("base64")}` };
    const res = await request(url, {
      method,
      dispatcher,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`);
    return text ? (JSON.parse(text) as { value?: unknown }).value : undefined;
  };
  token = (await call("POST", "/com/vmware/cis/session")) as string;

  return {
    createLibrary: async (name, datastoreId) =>
      (await call("POST", "/com/vmware/content/local-library", { create_spec: { name, type: "LOCAL", storage_backings: [{ type: "DATASTORE", datastore_id: datastoreId }] } })) as string,
    createItem: async (libraryId, name, type) => (await call("POST", "/com/vmware/content/library/item", { create_spec: { library_id: libraryId, name, type } })) as string,
    async upload(itemId, file) {
      const session = (await call("POST", "/com/vmware/content/library/item/update-session", { create_spec: { library_item_id: itemId } })) as string;
      const info = (await call("POST", `/com/vmware/content/library/item/updatesession/file/id:${session}?~action=add`, {
        file_spec: { name: basename(file), source_type: "PUSH", size: statSync(file).size },
      })) as { upload_endpoint: { uri: string } };
      const res = await request(info.upload_endpoint.uri, { method: "PUT", dispatcher, headers: { "vmware-api-session-id": token }, body: readFileSync(file) });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`PUT ${info.upload_endpoint.uri}: HTTP ${res.statusCode}`);
      await call("POST", `/com/vmware/content/library/item/update-session/id:${session}?~action=complete`);
    },
    findItems: async (libraryId, name) => ((await call("POST", "/com/vmware/content/library/item?~action=find", { spec: { library_id: libraryId, name } })) as string[] | undefined) ?? [],
    item: async (itemId) => (await call("GET", `/com/vmware/content/library/item/id:${itemId}`)) as Awaited<ReturnType<LibraryAdmin["item"]>>,
    async close() {
      await call("DELETE", "/com/vmware/cis/session").catch(() => undefined);
      await dispatcher.close();
    },
  };
}
