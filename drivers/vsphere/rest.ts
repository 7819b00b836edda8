// The vSphere Automation REST API transport: session login/logout and one `send` for the requests
// library.ts builds. vCenter 7.0U2+ has `/api`; older vCenters only the legacy `/rest`, which wraps
// answers in {"value": …} (request bodies carry each operation's parameters by name, e.g.
// {"spec": …} for a find); standalone ESXi has neither, so the driver treats REST as optional and
// does everything else over SOAP (see README "vSphere").
import { request, type Dispatcher } from "undici";
import { BuildError, UserError, asAbortError } from "../../src/errors.js";

export type RestFlavor = "api" | "rest";

export interface RestRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path and query, e.g. `/api/content/library?action=find`. */
  path: string;
  body?: unknown;
  /** Synchronous operations (OVF deploy and capture) take as long as the copy: minutes. */
  timeoutMs?: number;
}

/** A REST call that failed: its HTTP status and the vAPI error type, when the answer names one. */
export class RestError extends BuildError {
  constructor(
    readonly status: number,
    readonly errorType: string | undefined,
    message: string,
  ) {
    super("VSPHERE_REST", message);
  }
}

export class RestSession {
  private constructor(
    private readonly origin: URL,
    private readonly dispatcher: Dispatcher,
    readonly flavor: RestFlavor,
    /** The session token (a secret: callers register it with the event bus). */
    readonly token: string,
  ) {}

  /** Logs in with /api/session, else the legacy /rest session; undefined when neither exists (ESXi). */
  static async login(origin: URL, dispatcher: Dispatcher, username: string, password: string, signal: AbortSignal): Promise<RestSession | undefined> {
    const auth = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
    for (const [flavor, path] of [["api", "/api/session"], ["rest", "/rest/com/vmware/cis/session"]] as const) {
      const res = await send(origin, dispatcher, { method: "POST", path }, { authorization: auth }, signal);
      if (res.status === 404) continue;
      if (res.status === 401 || res.status === 403) throw new UserError("VSPHERE_LOGIN", `drivers.vsphere: REST login as ${username} failed (HTTP ${res.status})`);
      if (res.status >= 300) throw new BuildError("VSPHERE_REST", `POST ${path}: HTTP ${res.status}`);
      const token = flavor === "api" ? (res.json as string) : (res.json as { value: string }).value;
      if (typeof token !== "string") throw new BuildError("VSPHERE_REST", `POST ${path}: no session token in the answer`);
      return new RestSession(origin, dispatcher, flavor, token);
    }
    return undefined;
  }

  /** Sends one request; returns the answer (unwrapped from the legacy {"value": …}). */
  async send(req: RestRequest, signal: AbortSignal): Promise<unknown> {
    const res = await send(this.origin, this.dispatcher, req, { "vmware-api-session-id": this.token }, signal);
    if (res.status >= 300) {
      const e = restErrorOf(res.json);
      throw new RestError(res.status, e.type, `${req.method} ${req.path.replace(/\?.*$/, "")}: HTTP ${res.status}${e.type ? ` ${e.type}` : ""}${e.message ? `: ${e.message}` : ""}`);
    }
    return this.flavor === "api" ? res.json : (res.json as { value?: unknown } | undefined)?.value;
  }

  async logout(): Promise<void> {
    const path = this.flavor === "api" ? "/api/session" : "/rest/com/vmware/cis/session";
    await this.send({ method: "DELETE", path }, AbortSignal.timeout(10_000)).catch(() => undefined);
  }
}

/**
 * The error type and first message of a failed call: legacy /rest answers
 * {"type": "com.vmware.vapi.std.errors.not_found", "value": {"messages": [{"default_message"}]}},
 * /api answers {"error_type": "NOT_FOUND", "messages": [{"default_message"}]}.
 */
export function restErrorOf(json: unknown): { type: string | undefined; message: string | undefined } {
  if (json === null || typeof json !== "object") return { type: undefined, message: undefined };
  const j = json as { type?: unknown; error_type?: unknown; messages?: unknown; value?: { messages?: unknown } };
  const type = typeof j.error_type === "string" ? j.error_type : typeof j.type === "string" ? j.type : undefined;
  const messages = Array.isArray(j.messages) ? j.messages : Array.isArray(j.value?.messages) ? j.value.messages : [];
  const first = messages[0] as { default_message?: unknown } | undefined;
  return { type, message: typeof first?.default_message === "string" ? first.default_message : undefined };
}

/** Maps a library storage URI onto `[datastore] path` using the datastores' summary.url values. */
export function storageUriToDsPath(uri: string, datastores: Array<{ name: string; url: string }>): string | undefined {
  for (const ds of datastores) {
    const base = ds.url.endsWith("/") ? ds.url : ds.url + "/";
    if (uri.startsWith(base)) return `[${ds.name}] ${decodeURIComponent(uri.slice(base.length))}`;
  }
  return undefined;
}

async function send(origin: URL, dispatcher: Dispatcher, req: RestRequest, headers: Record<string, string>, signal: AbortSignal): Promise<{ status: number; json: unknown }> {
  const body = req.body;
  try {
    const res = await request(new URL(req.path, origin), {
      method: req.method,
      dispatcher,
      signal,
      headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(req.timeoutMs === undefined ? {} : { headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs }),
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
