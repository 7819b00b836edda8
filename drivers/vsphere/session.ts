// A logged-in vim25 session: service content, property reads, task waits. TLS is verified by
// default (Node's CA store, or the pinned ca_file only); `insecure` turns verification off.
import { readFileSync } from "node:fs";
import { Agent } from "undici";
import { BuildError, UserError } from "../../src/errors.js";
import { sleep } from "../../src/util/abort.js";
import { MoRef, SoapClient, SoapFault, child, children, refOf, textOf, type SoapValue, type XNode } from "./soap.js";

export interface Connection {
  /** https://host[:port] (a trailing /sdk is accepted). */
  url: string;
  username: string;
  password: string;
  caFile: string | undefined;
  insecure: boolean;
}

export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  searchIndex: MoRef;
  fileManager: MoRef;
  ovfManager: MoRef;
  sessionManager: MoRef;
  apiType: string;
}

/** The https origin and the /sdk endpoint of a vSphere URL. */
export function sdkUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError("VSPHERE_URL", `drivers.vsphere.url: not a URL: ${url}`);
  }
  if (u.protocol !== "https:") throw new UserError("VSPHERE_URL", `drivers.vsphere.url: must be https:// (got ${u.protocol}//)`);
  return new URL("/sdk", u.origin);
}

export function makeDispatcher(c: Pick<Connection, "caFile" | "insecure">): Agent {
  let ca: string | undefined;
  if (c.caFile) {
    try {
      ca = readFileSync(c.caFile, "utf8");
    } catch {
      throw new UserError("VSPHERE_CA_FILE", `drivers.vsphere.ca_file: cannot read ${c.caFile}`);
    }
  }
  return new Agent({ connect: { rejectUnauthorized: !c.insecure, ...(ca ? { ca } : {}) }, keepAliveTimeout: 10_000 });
}

export class VimSession {
  private constructor(
    readonly soap: SoapClient,
    readonly sc: ServiceContent,
    readonly dispatcher: Agent,
    readonly origin: URL,
  ) {}

  static async login(c: Connection, signal: AbortSignal): Promise<VimSession> {
    const url = sdkUrl(c.url);
    const dispatcher = makeDispatcher(c);
    const soap = new SoapClient({ url, dispatcher });
    try {
      const [rv] = await soap.call("RetrieveServiceContent", new MoRef("ServiceInstance", "ServiceInstance"), [], signal);
      const ref = (name: string) => {
        const r = refOf(child(rv, name));
        if (!r) throw new BuildError("VSPHERE_PROTOCOL", `service content lacks ${name}`);
        return r;
      };
      const sc: ServiceContent = {
        rootFolder: ref("rootFolder"),
        propertyCollector: ref("propertyCollector"),
        searchIndex: ref("searchIndex"),
        fileManager: ref("fileManager"),
        ovfManager: ref("ovfManager"),
        sessionManager: ref("sessionManager"),
        apiType: textOf(child(rv, "about"), "apiType") ?? "",
      };
      try {
        await soap.call("Login", sc.sessionManager, [["userName", c.username], ["password", c.password]], signal);
      } catch (err) {
        if (err instanceof SoapFault && err.faultType === "InvalidLogin") {
          throw new UserError("VSPHERE_LOGIN", `drivers.vsphere: login to ${url.host} as ${c.username} failed (wrong username or password)`);
        }
        throw err;
      }
      return new VimSession(soap, sc, dispatcher, new URL(url.origin));
    } catch (err) {
      await dispatcher.close().catch(() => undefined);
      throw err;
    }
  }

  call(method: string, self: MoRef, params: Array<[string, SoapValue]>, signal: AbortSignal): Promise<XNode[]> {
    return this.soap.call(method, self, params, signal);
  }

  /** Reads properties of one object; absent (unset) properties are missing from the map. */
  async props(obj: MoRef, paths: string[], signal: AbortSignal): Promise<Map<string, XNode>> {
    const rv = await this.call(
      "RetrievePropertiesEx",
      this.sc.propertyCollector,
      [
        ["specSet", { propSet: { type: obj.type, pathSet: paths }, objectSet: { obj } }],
        ["options", {}],
      ],
      signal,
    );
    const out = new Map<string, XNode>();
    for (const o of children(rv[0], "objects")) {
      // vCenter reports a property it would not read in missingSet (with the fault) instead of failing.
      for (const m of children(o, "missingSet")) {
        const fault = child(child(m, "fault"), "fault") ?? child(m, "fault");
        if (fault?.xsiType && /NotAuthenticated|NoPermission/.test(fault.xsiType)) throw new SoapFault(fault.xsiType, "", `RetrievePropertiesEx ${textOf(m, "path") ?? ""}`);
      }
      for (const p of children(o, "propSet")) {
        const name = textOf(p, "name");
        const val = child(p, "val");
        if (name && val) out.set(name, val);
      }
    }
    return out;
  }

  async prop(obj: MoRef, path: string, signal: AbortSignal): Promise<XNode | undefined> {
    return (await this.props(obj, [path], signal)).get(path);
  }

  /** Waits for a task; returns info.result. A failed task throws its fault type as the error. */
  async waitTask(task: MoRef, what: string, signal: AbortSignal): Promise<XNode | undefined> {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const info = await this.prop(task, "info", signal);
      const state = textOf(info, "state");
      if (state === "success") return child(info, "result");
      if (state === "error") {
        const err = child(info, "error");
        const fault = child(err, "fault");
        throw new SoapFault(fault?.xsiType ?? "TaskError", textOf(err, "localizedMessage") ?? "", what);
      }
      await sleep(delay, signal);
    }
  }

  /** Calls a *_Task method and waits for it. */
  async task(method: string, self: MoRef, params: Array<[string, SoapValue]>, signal: AbortSignal): Promise<XNode | undefined> {
    const [rv] = await this.call(method, self, params, signal);
    return this.waitTask(refOf(rv)!, method, signal);
  }

  async findByInventoryPath(path: string, signal: AbortSignal): Promise<MoRef | undefined> {
    const rv = await this.call("FindByInventoryPath", this.sc.searchIndex, [["inventoryPath", path]], signal);
    return refOf(rv[0]);
  }

  async logout(): Promise<void> {
    const signal = AbortSignal.timeout(10_000);
    await this.call("Logout", this.sc.sessionManager, [], signal).catch(() => undefined);
    await this.dispatcher.close().catch(() => undefined);
  }
}
