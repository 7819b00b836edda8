// Registry credentials, found where podman, skopeo and docker keep them, never in a template and
// never in a message. Order (first hit wins):
//   1. VMKILN_REGISTRY_USERNAME + VMKILN_REGISTRY_PASSWORD (CI secrets; both or neither);
//   2. the auth files containers-auth.json(5) names: $REGISTRY_AUTH_FILE, then
//      $XDG_RUNTIME_DIR/containers/auth.json (podman login), then ~/.docker/config.json (docker login);
//      in each, `credHelpers[host]` runs `docker-credential-<helper> get` (docker's credential-helper
//      protocol: the host on stdin, {"Username","Secret"} on stdout), else `auths[host].auth` is
//      base64("user:password"); a `credsStore` default helper is used the same way.
// A file that exists but is not JSON is an error naming the file (a silent anonymous push would fail
// later with a less useful 401).
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { run } from "../exec/run.js";
import { UserError } from "../errors.js";

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages ("$VMKILN_REGISTRY_USERNAME", "/run/user/0/containers/auth.json"). */
  source: string;
}

export interface CredentialLookup {
  env?: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Override the home directory (tests). */
  home?: string;
}

export function authFileCandidates(env: NodeJS.ProcessEnv, home: string): string[] {
  const out: string[] = [];
  if (env["REGISTRY_AUTH_FILE"]) out.push(env["REGISTRY_AUTH_FILE"]);
  if (env["XDG_RUNTIME_DIR"]) out.push(join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"));
  out.push(join(env["DOCKER_CONFIG"] ? env["DOCKER_CONFIG"] : join(home, ".docker"), "config.json"));
  return out;
}

export async function findCredentials(registry: string, o: CredentialLookup): Promise<Credentials | undefined> {
  const env = o.env ?? process.env;
  const user = env["VMKILN_REGISTRY_USERNAME"];
  const pass = env["VMKILN_REGISTRY_PASSWORD"];
  if (user !== undefined || pass !== undefined) {
    if (!user || pass === undefined) throw new UserError("REGISTRY_CREDENTIALS", "VMKILN_REGISTRY_USERNAME and VMKILN_REGISTRY_PASSWORD go together: set both or neither");
    return { username: user, password: pass, source: "$VMKILN_REGISTRY_USERNAME/$VMKILN_REGISTRY_PASSWORD" };
  }
  for (const file of authFileCandidates(env, o.home ?? homedir())) {
    const text = await readAuthFile(file);
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UserError("REGISTRY_AUTH_FILE", `${file}: not JSON; fix or remove it (it is where registry logins are kept)`);
    }
    const c = await fromAuthFile(json, registry, file, o.signal);
    if (c) return c;
  }
  return undefined;
}

/** An auth file holds a few logins; one larger than this is not one (e.g. REGISTRY_AUTH_FILE=/dev/zero). */
const MAX_AUTH_FILE_BYTES = 4 * 1024 * 1024;

/** The file's text; undefined when there is no such file. Anything but a regular file of sane size is an error naming it. */
async function readAuthFile(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK); // a FIFO must not block (see util/small-file.ts)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new UserError("REGISTRY_AUTH_FILE", `${file}: cannot read it (${code ?? (err as Error).message})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UserError("REGISTRY_AUTH_FILE", `${file}: not a regular file`);
    if (st.size > MAX_AUTH_FILE_BYTES) throw new UserError("REGISTRY_AUTH_FILE", `${file}: ${st.size} bytes, too large for a registry auth file`);
    return await fh.readFile("utf8");
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError("REGISTRY_AUTH_FILE", `${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    await fh.close();
  }
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);

/** The keys an auth file may use for a registry: the bare host[:port], or a URL form docker wrote. */
function keysFor(registry: string): string[] {
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

// Wrong types are errors naming the file and the key (never the value: it may be the secret), rather
// than skipped: a login that is silently ignored shows up later as a less useful 401.
function typeError(file: string, key: string, want: string): UserError {
  return new UserError("REGISTRY_AUTH_FILE", `${file}: ${key} must be ${want}`);
}

async function fromAuthFile(json: unknown, registry: string, file: string, signal: AbortSignal): Promise<Credentials | undefined> {
  if (!isRec(json)) throw new UserError("REGISTRY_AUTH_FILE", `${file}: must hold a JSON object (with "auths")`);
  if (json.credHelpers !== undefined && !isRec(json.credHelpers)) throw typeError(file, "credHelpers", "an object of host → helper name");
  if (json.auths !== undefined && !isRec(json.auths)) throw typeError(file, "auths", "an object of host → { auth }");
  if (json.credsStore !== undefined && typeof json.credsStore !== "string") throw typeError(file, "credsStore", "a helper name (a string)");
  const helpers = (json.credHelpers ?? {}) as Rec;
  const helper = Object.hasOwn(helpers, registry) ? helpers[registry] : undefined;
  if (helper !== undefined && typeof helper !== "string") throw typeError(file, `credHelpers[${JSON.stringify(registry)}]`, "a helper name (a string)");
  if (typeof helper === "string" && helper !== "") return runHelper(helper, registry, `${file} credHelpers`, signal);
  const auths = (json.auths ?? {}) as Rec;
  for (const k of keysFor(registry)) {
    if (!Object.hasOwn(auths, k)) continue;
    const entry = auths[k];
    if (!isRec(entry)) throw typeError(file, `auths[${JSON.stringify(k)}]`, "an object");
    if (entry.auth !== undefined && typeof entry.auth !== "string") throw typeError(file, `auths[${JSON.stringify(k)}].auth`, 'a string (base64 of "user:password")');
    if (typeof entry.auth === "string" && entry.auth !== "") {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon <= 0) throw new UserError("REGISTRY_AUTH_FILE", `${file}: the auth entry for ${registry} is not base64 of "user:password"`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: file };
    }
  }
  // docker's default store holds the secret; the file only lists the host.
  if (typeof json.credsStore === "string" && json.credsStore !== "" && keysFor(registry).some((k) => Object.hasOwn(auths, k))) {
    return runHelper(json.credsStore, registry, `${file} credsStore`, signal);
  }
  return undefined;
}

async function runHelper(helper: string, registry: string, source: string, signal: AbortSignal): Promise<Credentials> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new UserError("REGISTRY_CRED_HELPER", `${source}: helper name ${JSON.stringify(helper)} is not a plain name`);
  const program = `docker-credential-${helper}`;
  const r = await run(program, ["get"], {
    signal,
    timeoutMs: 60_000,
    input: registry,
    reject: false,
    installHint: `${source} names the credential helper ${program}; install it, or set VMKILN_REGISTRY_USERNAME/VMKILN_REGISTRY_PASSWORD`,
  });
  // The helper's output is the secret: never include it in a message.
  if (r.exitCode !== 0) throw new UserError("REGISTRY_CRED_HELPER", `${program} get failed for ${registry} (exit ${r.exitCode}); see ${source}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = undefined;
  }
  if (!isRec(parsed) || typeof parsed.Username !== "string" || typeof parsed.Secret !== "string") {
    throw new UserError("REGISTRY_CRED_HELPER", `${program} get for ${registry} did not print {"Username","Secret"}`);
  }
  return { username: parsed.Username, password: parsed.Secret, source: `${program} (${source})` };
}
