// A small OCI distribution client on undici: what a push needs (opencontainers/distribution-spec
// spec.md: "Determining support" GET /v2/ (end-1), "Checking if content exists in the registry" HEAD
// blobs (end-2), "Pushing blobs" POST/PATCH/PUT (end-4a, end-5, end-6), the upload status GET
// (end-13), "Pushing Manifests" PUT (end-7)) and distribution's token flow (docs/spec/auth/token.md).
//
// Credentials never reach a message: errors name the registry, the repository, the HTTP status and the
// registry's error code, and where the credentials came from, never the user name or secret, and
// Authorization headers are only ever set on requests, never echoed.
import { readSmallFile } from "../util/small-file.js";
import { Agent, errors as undiciErrors, request, type Dispatcher } from "undici";
import { BuildError, UserError, asAbortError } from "../errors.js";
import type { EventBus } from "../log/events.js";
import { parseChallenges, type Challenge } from "./challenge.js";
import type { Credentials } from "./credentials.js";
import type { OciReference } from "./reference.js";

export interface RegistryOptions {
  ref: OciReference;
  credentials: Credentials | undefined;
  /** PEM CA bundle to trust instead of the system store (readCaFile). */
  caPem?: string | undefined;
  /** HTTPS without verification, falling back to plain HTTP when the server does not speak TLS. */
  insecure?: boolean;
  events: EventBus;
  signal: AbortSignal;
  /** Per-request header/body idle timeout (ms). */
  timeoutMs?: number;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** The registry did not answer (refused, reset, timed out): the caller may retry. */
export class RegistryUnreachableError extends BuildError {}

export type Body = Buffer | string | NodeJS.ReadableStream | AsyncIterable<Buffer> | undefined;
/** A body, or a function making it afresh: a stream can be sent again (after a 401) only through one. */
export type BodySource = Body | (() => Body);

/**
 * Kept of a response body (errors, token JSON and upload status are a few KiB): a registry that
 * streams more is cut off there rather than read to the end.
 */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** --ca-file / ca_file: a PEM bundle, read boundedly (util/small-file.ts). */
export async function readCaFile(path: string): Promise<string> {
  const ca = await readSmallFile(path, "--ca-file", "REGISTRY_CA_FILE");
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new UserError("REGISTRY_CA_FILE", `--ca-file: ${path} holds no PEM certificate`);
  return ca;
}

export class RegistryClient {
  readonly ref: OciReference;
  base: string;
  private readonly dispatcher: Dispatcher;
  private authorization: string | undefined;
  private challenge: Challenge | undefined;
  private readonly o: RegistryOptions;

  constructor(o: RegistryOptions) {
    this.o = o;
    this.ref = o.ref;
    this.base = `https://${o.ref.registry}`;
    const ca = o.caPem;
    const timeout = o.timeoutMs ?? 120_000;
    this.dispatcher = new Agent({
      connect: { rejectUnauthorized: !o.insecure, ...(ca ? { ca } : {}), timeout: 30_000 },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 10_000,
    });
    if (o.credentials) o.events.addSecret(o.credentials.password);
  }

  get name(): string {
    return this.ref.registry;
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  /** GET /v2/ (end-1): reachability, TLS, and the auth challenge; logs in when asked to. */
  async ping(): Promise<void> {
    let r: RegistryResponse;
    try {
      r = await this.raw("GET", "/v2/");
    } catch (err) {
      // --insecure: a lab registry may speak plain HTTP (as podman's --tls-verify=false falls back).
      if (this.o.insecure && err instanceof RegistryUnreachableError && /TLS|SSL|EPROTO|wrong version/i.test(err.message)) {
        this.base = `http://${this.ref.registry}`;
        this.o.events.warn(`${this.name} does not speak TLS: using plain HTTP (--insecure)`, "push");
        r = await this.raw("GET", "/v2/");
      } else throw err;
    }
    if (r.status === 200) return;
    if (r.status !== 401) throw this.httpError("GET /v2/", r);
    await this.login(r, "GET /v2/");
    const again = await this.raw("GET", "/v2/", { auth: true });
    if (again.status === 401 || again.status === 403) throw this.refused(again);
    if (again.status !== 200) throw this.httpError("GET /v2/", again);
  }

  /**
   * A request with the session's authorization; on a 401 (a token that expired: distribution's last
   * 5 minutes, less than a large disk takes to upload) it logs in again and retries once, when the
   * body can be sent again (nothing, a Buffer, or a function that makes the stream afresh). A second
   * 401 is the credentials refused: never a loop.
   */
  async call(method: string, path: string, opts: { headers?: Record<string, string>; body?: BodySource; what?: string } = {}): Promise<RegistryResponse> {
    const r = await this.raw(method, path, { ...opts, auth: true });
    const b = opts.body;
    if (r.status !== 401 || !(b === undefined || typeof b === "function" || Buffer.isBuffer(b) || typeof b === "string")) return r;
    await this.login(r, opts.what ?? `${method} ${path}`);
    const again = await this.raw(method, path, { ...opts, auth: true });
    if (again.status === 401 || again.status === 403) throw this.refused(again);
    return again;
  }

  /**
   * Interrupted (Ctrl-C) with an upload session open: tell the registry to drop it (spec "Canceling
   * an Upload", DELETE <location>), so it does not keep the partial bytes until its own purge. Best
   * effort, at most 2 s, on its own signal (the command's is already aborted).
   */
  async cancelUpload(location: string): Promise<void> {
    await this.raw("DELETE", location, { auth: true, signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  }

  /**
   * Resolves a Location header (absolute or relative, RFC 7231 7.1.2) against the registry. A
   * registry may send uploads elsewhere (a storage front end), but never from HTTPS down to plain HTTP.
   */
  resolve(location: string): string {
    let u: URL;
    try {
      u = new URL(location, this.base + "/");
    } catch {
      throw new BuildError("REGISTRY_PROTOCOL", `${this.name}: answered with a Location that is not a URL (${clipHeader(location)})`);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new BuildError("REGISTRY_PROTOCOL", `${this.name}: answered with a Location that is not http(s) (${clipHeader(location)})`);
    if (u.protocol === "http:" && this.base.startsWith("https:")) {
      throw new BuildError("REGISTRY_PROTOCOL", `${this.name}: sent the upload from HTTPS to plain HTTP (${redactUrl(u.toString())}); refusing`);
    }
    return u.toString();
  }

  async raw(method: string, pathOrUrl: string, opts: { headers?: Record<string, string>; body?: BodySource; auth?: boolean; signal?: AbortSignal } = {}): Promise<RegistryResponse> {
    const signal = opts.signal ?? this.o.signal;
    const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.base + pathOrUrl;
    const headers: Record<string, string> = { "user-agent": "vmkiln", ...(opts.headers ?? {}) };
    // The registry's credentials (Basic) or token go to the registry only: a Location on another
    // host (however the registry came to send it) gets the request without them.
    if (opts.auth && this.authorization && sameOrigin(url, this.base)) headers["authorization"] = this.authorization;
    const body = typeof opts.body === "function" ? opts.body() : opts.body;
    try {
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body as Dispatcher.DispatchOptions["body"],
        dispatcher: this.dispatcher,
        signal,
        maxRedirections: 0,
      } as Parameters<typeof request>[1]);
      // Bodies are small (errors, JSON); a blob body is never read through here.
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of res.body as AsyncIterable<Buffer>) {
        chunks.push(c);
        size += c.length;
        if (size >= MAX_RESPONSE_BYTES) {
          res.body.destroy();
          break;
        }
      }
      return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES) };
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      throw this.unreachable(err, `${method} ${redactUrl(url)}`);
    }
  }

  private unreachable(err: unknown, what: string): VmkilnLike {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException & { code?: string } };
    const code = e.cause?.code ?? e.code;
    const detail = [code, e.cause?.message ?? e.message].filter(Boolean).join(": ");
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|certificate/i.test(detail) && !/EPROTO/.test(String(code))) {
      return new UserError("REGISTRY_TLS", `${this.name}: TLS certificate not trusted (${detail})`, {
        hint: "pass --ca-file <the registry's CA.pem> (output.publish[].ca_file), or --insecure for a lab registry",
      });
    }
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      return new RegistryUnreachableError("REGISTRY_TIMEOUT", `${this.name}: no answer to ${what} in time (${detail})`);
    }
    return new RegistryUnreachableError("REGISTRY_UNREACHABLE", `${this.name}: ${what} failed: ${detail}`);
  }

  /** Answers a 401's challenge: Basic sends the credentials; Bearer fetches a token for this repository. */
  private async login(r: RegistryResponse, what: string): Promise<void> {
    const challenges = parseChallenges(r.headers["www-authenticate"]);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const c = this.o.credentials;
    if (bearer) {
      this.challenge = bearer;
      this.authorization = `Bearer ${await this.token(bearer)}`;
      return;
    }
    if (basic) {
      if (!c) throw this.needsCredentials(what);
      this.authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
      return;
    }
    const h = r.headers["www-authenticate"];
    throw new BuildError("REGISTRY_AUTH_SCHEME", `${this.name}: ${what} answered 401 with no Basic or Bearer challenge (WWW-Authenticate: ${h === undefined ? "none" : clipHeader(String(h))})`);
  }

  private async token(ch: Challenge): Promise<string> {
    const realm = ch.params["realm"];
    if (!realm || !/^https?:\/\//i.test(realm)) throw new BuildError("REGISTRY_AUTH_REALM", `${this.name}: Bearer challenge without an http(s) realm`);
    let u: URL;
    try {
      u = new URL(realm);
    } catch {
      throw new BuildError("REGISTRY_AUTH_REALM", `${this.name}: the Bearer challenge's realm is not a URL (${clipHeader(realm)})`);
    }
    // The credentials go to the realm as Basic: never in clear text when the registry itself is HTTPS.
    if (u.protocol === "http:" && this.base.startsWith("https:")) {
      throw new BuildError("REGISTRY_AUTH_REALM", `${this.name}: the Bearer challenge sends the credentials to a plain-HTTP token server (${u.host}); refusing`, {
        hint: "the registry's auth configuration names an http:// realm; it must be https://",
      });
    }
    if (ch.params["service"]) u.searchParams.set("service", ch.params["service"]);
    // Ask for what the push needs; a challenge's own scope (another repository, a catalog) is added too.
    u.searchParams.append("scope", `repository:${this.ref.repository}:pull,push`);
    if (ch.params["scope"] && ch.params["scope"] !== `repository:${this.ref.repository}:pull,push`) u.searchParams.append("scope", ch.params["scope"]);
    const c = this.o.credentials;
    const headers: Record<string, string> = {};
    if (c) headers["authorization"] = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
    const r = await this.raw("GET", u.toString(), { headers });
    if (r.status === 401 || r.status === 403) throw c ? this.refused(r, `token server ${u.host}`) : this.needsCredentials(`the token server ${u.host}`);
    if (r.status !== 200) throw this.httpError(`GET token from ${u.host}`, r);
    let json: { token?: unknown; access_token?: unknown };
    try {
      json = JSON.parse(r.body.toString("utf8")) as typeof json;
    } catch {
      throw new BuildError("REGISTRY_TOKEN", `${this.name}: the token server ${u.host} did not answer JSON`);
    }
    const token = typeof json.token === "string" ? json.token : typeof json.access_token === "string" ? json.access_token : undefined;
    if (!token) throw new BuildError("REGISTRY_TOKEN", `${this.name}: the token server ${u.host} answered without a token`);
    this.o.events.addSecret(token);
    return token;
  }

  private needsCredentials(what: string): UserError {
    return new UserError("REGISTRY_AUTH_REQUIRED", `${this.name}: ${what} needs credentials and none were found for ${this.name}`, {
      hint: "podman login / docker login to it, or set VMKILN_REGISTRY_USERNAME and VMKILN_REGISTRY_PASSWORD",
    });
  }

  private refused(r: RegistryResponse, who = "the registry"): UserError {
    const src = this.o.credentials ? ` (credentials from ${this.o.credentials.source})` : "";
    const code = registryErrors(r.body);
    return new UserError("REGISTRY_AUTH_FAILED", `${this.name}: ${who} refused the credentials${src}: HTTP ${r.status}${code ? ` ${code}` : ""}`, {
      hint: "check the user name and password (podman login again, or VMKILN_REGISTRY_USERNAME/PASSWORD) and that the user may push to " + this.ref.repository,
    });
  }

  httpError(what: string, r: RegistryResponse): UserError | BuildError {
    const code = registryErrors(r.body);
    const E = r.status >= 400 && r.status < 500 && r.status !== 404 && r.status !== 408 && r.status !== 429 ? UserError : BuildError;
    return new E("REGISTRY_HTTP", `${this.name}/${this.ref.repository}: ${what} answered HTTP ${r.status}${code ? ` ${code}` : ""}`);
  }
}

type VmkilnLike = UserError | BuildError;

/** "CODE: message; CODE: message" from a distribution error body ({"errors":[{code,message}]}), clipped. */
export function registryErrors(body: Buffer): string {
  try {
    const j = JSON.parse(body.toString("utf8")) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (!Array.isArray(j.errors)) return "";
    return j.errors
      .slice(0, 3)
      .map((e) => [e.code, e.message].filter((x) => typeof x === "string").join(": "))
      .join("; ")
      .slice(0, 300)
      // The registry's own words reach a terminal: no escape sequences (C0, DEL, C1).
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  } catch {
    return "";
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** A header value from a server, for a message: clipped, and control characters escaped (it may reach a terminal). */
export function clipHeader(v: string): string {
  // JSON escapes C0 controls; DEL and C1 (U+009B is a CSI on some terminals) are escaped too.
  const s = JSON.stringify(v.length > 200 ? v.slice(0, 200) : v).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return v.length > 200 ? `${s}… (${v.length} characters)` : s;
}

/** Upload URLs carry an opaque state token (distribution's `_state`): keep it out of messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.search) u.search = "?…";
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(url)";
  }
}
