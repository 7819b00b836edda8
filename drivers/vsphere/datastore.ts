// Datastore file transfers over the /folder HTTP endpoint (authenticated with the SOAP session
// cookie) and file management through FileManager (the ISO cache on top of it: iso-cache.ts).
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { request } from "undici";
import { BuildError, asAbortError } from "../../src/errors.js";
import { progressReporter, type EventBus } from "../../src/log/events.js";
import { MoRef, SoapFault, children, refOf, textOf } from "./soap.js";
import type { Placement } from "./inventory.js";
import { dsPath } from "./inventory.js";
import type { VimSession } from "./session.js";

/** `https://host/folder/<path>?dcPath=<dc>&dsName=<ds>` */
export function folderUrl(origin: URL, dcPath: string, datastore: string, path: string): URL {
  const u = new URL(`/folder/${path.split("/").map(encodeURIComponent).join("/")}`, origin);
  u.searchParams.set("dcPath", dcPath.replace(/^\/+/, ""));
  u.searchParams.set("dsName", datastore);
  return u;
}

export class Datastore {
  constructor(
    private readonly s: VimSession,
    private readonly where: Pick<Placement, "datacenter" | "datacenterPath" | "datastoreName"> & { datastore?: MoRef },
  ) {}

  private datastoreRef: MoRef | undefined;

  private headers(): Record<string, string> {
    return this.s.soap.sessionCookie ? { cookie: `vmware_soap_session=${this.s.soap.sessionCookie}` } : {};
  }

  url(path: string): URL {
    return folderUrl(this.s.origin, this.where.datacenterPath, this.where.datastoreName, path);
  }

  /** `[datastore] path` of a file on this datastore. */
  path(path: string): string {
    return dsPath(this.where.datastoreName, path);
  }

  async exists(path: string, signal: AbortSignal): Promise<boolean> {
    try {
      const res = await request(this.url(path), { method: "HEAD", dispatcher: this.s.dispatcher, headers: this.headers(), signal });
      await res.body.dump();
      return res.statusCode === 200;
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      throw err;
    }
  }

  async mkdir(path: string, signal: AbortSignal): Promise<void> {
    try {
      await this.s.call("MakeDirectory", this.s.sc.fileManager, [["name", this.path(path)], ["datacenter", this.where.datacenter], ["createParentDirectories", true]], signal);
    } catch (err) {
      if (!(err instanceof SoapFault && err.faultType === "FileAlreadyExists")) throw err;
    }
  }

  async upload(local: string, path: string, events: EventBus, signal: AbortSignal): Promise<void> {
    const { size } = await stat(local);
    const p = progressReporter(events, `upload ${path}`, size);
    const file = createReadStream(local);
    // Counted as undici pulls it (a "data" listener would start the flow before undici reads).
    const body = Readable.from(
      (async function* () {
      for await (const chunk of file) {
        p.add((chunk as Buffer).length);
        yield chunk as Buffer;
      }
      })(),
    );
    try {
      const res = await request(this.url(path), {
        method: "PUT",
        dispatcher: this.s.dispatcher,
        headers: { ...this.headers(), "content-type": "application/octet-stream", "content-length": String(size) },
        body,
        signal,
      });
      await res.body.dump();
      if (res.statusCode !== 200 && res.statusCode !== 201) throw new BuildError("VSPHERE_UPLOAD", `upload of ${this.path(path)} failed: HTTP ${res.statusCode}`);
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      throw err;
    } finally {
      file.destroy();
      p.end();
    }
  }

  /**
   * A file's size in bytes, undefined when there is no such file: the datastore browser's answer
   * (SearchDatastore_Task with fileSize, as govmomi's object.Datastore.Stat asks it), not an HTTP
   * HEAD, whose Content-Length not every /folder endpoint sends.
   */
  async size(path: string, signal: AbortSignal): Promise<number | undefined> {
    const slash = path.lastIndexOf("/");
    const folder = slash < 0 ? "" : path.slice(0, slash);
    const name = path.slice(slash + 1);
    const browser = refOf(await this.s.prop(await this.datastore(signal), "browser", signal));
    if (!browser) throw new BuildError("VSPHERE_DATASTORE", `datastore ${this.where.datastoreName} has no browser`);
    let result;
    try {
      result = await this.s.task(
        "SearchDatastore_Task",
        browser,
        [
          ["datastorePath", this.path(folder)],
          ["searchSpec", { details: { fileType: true, fileSize: true, modification: false, fileOwner: false }, matchPattern: name }],
        ],
        signal,
      );
    } catch (err) {
      if (err instanceof SoapFault && /FileNotFound|NotFound/.test(err.faultType)) return undefined; // no such folder
      throw err;
    }
    // matchPattern is a glob: only the exact name counts.
    const file = children(result, "file").find((f) => textOf(f, "path") === name);
    const size = textOf(file, "fileSize");
    return file === undefined ? undefined : Number(size ?? Number.NaN);
  }

  /** Renames a file on this datastore, replacing what is at `to`. */
  async move(from: string, to: string, signal: AbortSignal): Promise<void> {
    const dc = this.where.datacenter;
    await this.s.task(
      "MoveDatastoreFile_Task",
      this.s.sc.fileManager,
      [["sourceName", this.path(from)], ["sourceDatacenter", dc], ["destinationName", this.path(to)], ["destinationDatacenter", dc], ["force", true]],
      signal,
    );
  }

  private async datastore(signal: AbortSignal): Promise<MoRef> {
    this.datastoreRef ??= this.where.datastore ?? (await this.s.findByInventoryPath(`${this.where.datacenterPath}/datastore/${this.where.datastoreName}`, signal));
    if (!this.datastoreRef) throw new BuildError("VSPHERE_DATASTORE", `datastore ${this.where.datastoreName} not found in ${this.where.datacenterPath}`);
    return this.datastoreRef;
  }

  /** Deletes a file or folder; a missing one is not an error (cleanup is idempotent). */
  async remove(path: string, signal: AbortSignal): Promise<void> {
    try {
      await this.s.task("DeleteDatastoreFile_Task", this.s.sc.fileManager, [["name", this.path(path)], ["datacenter", this.where.datacenter]], signal);
    } catch (err) {
      if (err instanceof SoapFault && /FileNotFound|NotFound/.test(err.faultType)) return;
      throw err;
    }
  }
}
