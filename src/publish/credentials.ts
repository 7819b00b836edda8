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
import { readFile } from "node:fs/promises";
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
    const text = await readFile(file, "utf8").catch(() => undefined);
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

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);

/** The keys an auth file may use for a registry: the bare host[:port], or a URL form docker wrote. */
function keysFor(registry: string): string[] {
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

async function fromAuthFile(json: unknown, registry: string, file: string, signal: AbortSignal): Promise<Credentials | undefined> {
  if (!isRec(json)) return undefined;
  const helpers = isRec(json.credHelpers) ? json.credHelpers : {};
  const helper = helpers[registry];
  if (typeof helper === "string" && helper !== "") return runHelper(helper, registry, `${file} credHelpers`, signal);
  const auths = isRec(json.auths) ? json.auths : {};
  for (const k of keysFor(registry)) {
    const entry = auths[k];
    if (!isRec(entry)) continue;
    if (typeof entry.auth === "string" && entry.auth !== "") {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon <= 0) throw new UserError("REGISTRY_AUTH_FILE", `${file}: the auth entry for ${registry} is not base64 of "user:password"`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: file };
    }
  }
  // docker's default store holds the secret; the file only lists the host.
  if (typeof json.credsStore === "string" && json.credsStore !== "" && keysFor(registry).some((k) => k in auths)) {
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
