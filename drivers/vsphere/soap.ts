// vim25 SOAP over undici + xml2js: the API for everything REST lacks (VM create/reconfigure/power,
// guest info, export lease, keystrokes) and the only one standalone ESXi has.
//
// Wire details (../shared/reference/vsphere.md "Wire details"):
// - typed values come back as `<prefix>:type="xsd:string"` with a locally declared prefix for the
//   XMLSchema-instance namespace: attributes are matched by namespace URI, never by the literal
//   `xsi:type`;
// - faults often carry an empty faultstring: the fault type in <detail> is what names the problem;
// - element order inside a data object follows the WSDL; callers pass fields in that order.
import { parseStringPromise } from "xml2js";
import { request, type Dispatcher } from "undici";
import { BuildError, UserError, asAbortError } from "../../src/errors.js";

export const XSI = "http://www.w3.org/2001/XMLSchema-instance";
const SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/";

/** A managed object reference (`<_this type="VirtualMachine">vm-42</_this>`). */
export class MoRef {
  constructor(
    readonly type: string,
    readonly value: string,
  ) {}
  toString(): string {
    return `${this.type}:${this.value}`;
  }
}

/** A data object; `$type` becomes xsi:type (needed wherever the WSDL declares a base type); `_` is
 *  the text of a typed simple value such as an OptionValue's `value`. */
export interface SoapObject {
  $type?: string;
  [field: string]: SoapValue;
}
export type SoapValue = string | number | boolean | MoRef | SoapObject | SoapValue[] | undefined;

// ---------- request side ----------

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** One element (or several, for an array) named `name` holding `value`. */
export function toXml(name: string, value: SoapValue): string {
  if (value === undefined) return "";
  if (Array.isArray(value)) return value.map((v) => toXml(name, v)).join("");
  if (value instanceof MoRef) return `<${name} type="${escapeXml(value.type)}">${escapeXml(value.value)}</${name}>`;
  if (typeof value === "object") {
    const { $type, _: text, ...fields } = value;
    const typeAttr = $type === undefined ? "" : ` xsi:type="${escapeXml($type)}"`;
    // `_` is the text of a typed simple value (`<value xsi:type="xsd:string">…</value>`).
    if (text !== undefined) return `<${name}${typeAttr}>${escapeXml(String(text as string))}</${name}>`;
    return `<${name}${typeAttr}>${Object.entries(fields).map(([k, v]) => toXml(k, v)).join("")}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** The request envelope for `method` on `self` with parameters in WSDL order. */
export function buildEnvelope(method: string, self: MoRef, params: Array<[string, SoapValue]> = []): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soapenv:Envelope xmlns:soapenv="${SOAPENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="${XSI}">` +
    `<soapenv:Body><${method} xmlns="urn:vim25">` +
    toXml("_this", self) +
    params.map(([k, v]) => toXml(k, v)).join("") +
    `</${method}></soapenv:Body></soapenv:Envelope>`
  );
}

// ---------- response side ----------

/** A namespace-resolved element. */
export interface XNode {
  uri: string;
  local: string;
  /** Local name of the xsi:type, when present (prefix stripped). */
  xsiType: string | undefined;
  attrs: Record<string, string>;
  text: string;
  children: XNode[];
}

interface RawNode {
  $?: Record<string, { name: string; value: string; local: string; uri: string }>;
  $ns?: { local: string; uri: string };
  $$?: RawNode[];
  _?: string;
  "#name"?: string;
}

function toNode(raw: RawNode | string, name: string): XNode {
  if (typeof raw === "string") return { uri: "", local: name, xsiType: undefined, attrs: {}, text: raw, children: [] };
  const attrs: Record<string, string> = {};
  let xsiType: string | undefined;
  for (const a of Object.values(raw.$ ?? {})) {
    if (a.uri === XSI && a.local === "type") xsiType = a.value.includes(":") ? a.value.slice(a.value.indexOf(":") + 1) : a.value;
    else if (!a.name.startsWith("xmlns")) attrs[a.local || a.name] = a.value;
  }
  return {
    uri: raw.$ns?.uri ?? "",
    local: raw.$ns?.local ?? name,
    xsiType,
    attrs,
    text: typeof raw._ === "string" ? raw._ : "",
    children: (raw.$$ ?? []).map((c) => toNode(c, c["#name"] ?? "")),
  };
}

export async function parseXml(xml: string): Promise<XNode> {
  const doc = (await parseStringPromise(xml, { xmlns: true, explicitChildren: true, preserveChildrenOrder: true, explicitRoot: true, strict: true })) as Record<string, RawNode>;
  const [name, raw] = Object.entries(doc)[0] ?? [];
  if (!name || !raw) throw new Error("empty XML document");
  return toNode(raw, name);
}

export function child(n: XNode | undefined, local: string): XNode | undefined {
  return n?.children.find((c) => c.local === local);
}
export function children(n: XNode | undefined, local: string): XNode[] {
  return n ? n.children.filter((c) => c.local === local) : [];
}
export function textOf(n: XNode | undefined, local: string): string | undefined {
  return child(n, local)?.text;
}
export function refOf(n: XNode | undefined): MoRef | undefined {
  return n ? new MoRef(n.attrs.type ?? n.xsiType ?? "", n.text) : undefined;
}

const XSD_SIMPLE = new Set(["string", "boolean", "byte", "short", "int", "long", "float", "double", "dateTime", "base64Binary", "anyURI"]);

/**
 * A response element as a request value, to send back an object read from vSphere: an edit in
 * ReconfigVM_Task carries the whole device as read (govc and Packer do the same; vcsim even needs
 * its deviceInfo). Data objects keep their xsi:type and the server's (WSDL) field order, repeated
 * fields become arrays, references stay references.
 */
export function asSoapValue(n: XNode): SoapValue {
  if (n.children.length === 0) {
    if (n.attrs.type !== undefined) return new MoRef(n.attrs.type, n.text);
    if (n.xsiType === undefined) return n.text;
    if (XSD_SIMPLE.has(n.xsiType)) return { $type: `xsd:${n.xsiType}`, _: n.text };
    return n.text === "" ? { $type: n.xsiType } : { $type: n.xsiType, _: n.text };
  }
  const fields = new Map<string, SoapValue[]>();
  for (const c of n.children) {
    const list = fields.get(c.local);
    if (list) list.push(asSoapValue(c));
    else fields.set(c.local, [asSoapValue(c)]);
  }
  const out: SoapObject = n.xsiType === undefined ? {} : { $type: n.xsiType };
  for (const [name, values] of fields) out[name] = values.length === 1 ? values[0] : values;
  return out;
}

export class SoapFault extends BuildError {
  constructor(
    /** The fault type from <detail> (e.g. InvalidPowerState), or "ServerFault" when there is none. */
    readonly faultType: string,
    readonly faultString: string,
    readonly method: string,
  ) {
    super(`VSPHERE_${faultType.toUpperCase()}`, `vSphere ${method}: ${faultType}${faultString ? `: ${faultString}` : ""}`);
  }
}

/** Reads a fault: the type is the detail element's xsi:type, else its name without the trailing "Fault". */
export function parseFault(body: XNode, method: string): SoapFault | undefined {
  const fault = child(body, "Fault");
  if (!fault || fault.uri !== SOAPENV) return undefined;
  const detail = child(fault, "detail")?.children[0];
  const type = detail?.xsiType ?? detail?.local.replace(/Fault$/, "") ?? "ServerFault";
  return new SoapFault(type, textOf(fault, "faultstring")?.trim() ?? "", method);
}

/** The `<returnval>` elements of a response body (one per value). */
export async function parseResponse(xml: string, method: string): Promise<XNode[]> {
  const env = await parseXml(xml);
  if (env.local !== "Envelope" || env.uri !== SOAPENV) throw new BuildError("VSPHERE_PROTOCOL", `vSphere ${method}: the answer is not a SOAP envelope`);
  const body = child(env, "Body");
  const fault = parseFault(body!, method);
  if (fault) throw fault;
  const response = body?.children[0];
  if (!response || response.local !== `${method}Response`) throw new BuildError("VSPHERE_PROTOCOL", `vSphere ${method}: unexpected answer <${response?.local ?? "nothing"}>`);
  return children(response, "returnval");
}

// ---------- the client ----------

export interface SoapClientOptions {
  /** The /sdk endpoint. */
  url: URL;
  dispatcher: Dispatcher;
  /** Per-call timeout. */
  timeoutMs?: number;
}

export class SoapClient {
  private cookie: string | undefined;
  readonly url: URL;

  constructor(private readonly opts: SoapClientOptions) {
    this.url = opts.url;
  }

  /** The session cookie value (datastore /folder transfers authenticate with it). */
  get sessionCookie(): string | undefined {
    return this.cookie;
  }

  async call(method: string, self: MoRef, params: Array<[string, SoapValue]>, signal: AbortSignal): Promise<XNode[]> {
    const body = buildEnvelope(method, self, params);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.opts.url, {
        method: "POST",
        dispatcher: this.opts.dispatcher,
        signal,
        headersTimeout: this.opts.timeoutMs ?? 300_000,
        bodyTimeout: this.opts.timeoutMs ?? 300_000,
        headers: {
          "content-type": "text/xml; charset=utf-8",
          soapaction: "urn:vim25/6.5",
          ...(this.cookie ? { cookie: `vmware_soap_session=${this.cookie}` } : {}),
        },
        body,
      });
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      throw connectionError(this.opts.url, err);
    }
    const setCookie = res.headers["set-cookie"];
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const m = /vmware_soap_session="?([^";]+)"?/.exec(c);
      if (m) this.cookie = m[1];
    }
    const text = await res.body.text();
    if (res.statusCode !== 200 && res.statusCode !== 500) {
      throw new BuildError("VSPHERE_HTTP", `vSphere ${method}: HTTP ${res.statusCode} from ${this.opts.url.origin}`);
    }
    return parseResponse(text, method);
  }
}

/** TLS and connection failures as one-line errors that name the fix. */
export function connectionError(url: URL, err: unknown): Error {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? "";
  const msg = e.cause?.message ?? e.message ?? String(err);
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code) || /certificate/i.test(msg)) {
    return new UserError("VSPHERE_TLS", `drivers.vsphere.url: the TLS certificate of ${url.host} is not trusted (${code || msg})`, {
      hint: "pin the server's CA with drivers.vsphere.ca_file, or set insecure: true to skip verification (not recommended)",
      cause: err,
    });
  }
  return new BuildError("VSPHERE_CONNECT", `cannot reach vSphere at ${url.origin}: ${code || msg}`, { cause: err });
}
