// What the build's own boot looks like, recorded in manifest.json (`build_identity`) before
// generalize erases it, so `vmkiln test` can tell a clone's first boot from the build's: the
// machine-id, every SSH host key's fingerprint, the pinned one, the build user and the build key's
// fingerprint. Public facts only; the private key never leaves the build dir.
import type { BuildContext } from "../pipeline/context.js";
import { fingerprint } from "../ssh/keys.js";
import type { BuildIdentity } from "../artifact/manifest.js";
import { shq } from "../ssh/session.js";

/** The instance-id make-cidata gives the build (a template's meta_data may set its own). */
export function buildInstanceId(ctx: Pick<BuildContext, "buildId" | "spec">): string {
  const own = ctx.spec.cloudInit.metaData["instance-id"];
  return typeof own === "string" || typeof own === "number" ? String(own) : `vmkiln-${ctx.buildId}`;
}

/** `ssh-ed25519 AAAA… comment` → SHA256:… (the fingerprint `ssh-keygen -lf` prints). */
export function publicKeyFingerprint(publicKey: string | undefined): string | undefined {
  const b64 = publicKey?.trim().split(/\s+/)[1];
  if (!b64) return undefined;
  const blob = Buffer.from(b64, "base64");
  return blob.length ? fingerprint(blob) : undefined;
}

/** Reads the machine-id and the host keys' fingerprints over SSH (`ssh-keygen -lf` on each .pub). */
export const IDENTITY_SCRIPT = `cat /etc/machine-id 2>/dev/null | sed 's/^/machine-id /'
for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && ssh-keygen -lf "$f" 2>/dev/null | awk '{print "host-key " $2}'; done
true`;

export function parseIdentityOutput(text: string): { machineId: string | undefined; hostKeys: string[] } {
  let machineId: string | undefined;
  const hostKeys: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^machine-id ([0-9a-f]{32})\s*$/.exec(line);
    if (m) machineId = m[1];
    const k = /^host-key (SHA256:[A-Za-z0-9+/]+)\s*$/.exec(line);
    if (k && !hostKeys.includes(k[1]!)) hostKeys.push(k[1]!);
  }
  return { machineId, hostKeys };
}

export async function recordBuildIdentity(ctx: BuildContext, signal: AbortSignal): Promise<BuildIdentity> {
  const out: string[] = [];
  const r = await ctx.ssh!.exec(`sh -c ${shq(IDENTITY_SCRIPT)}`, {
    signal,
    timeoutMs: 60_000,
    onLine: (s, line) => s === "stdout" && out.push(line),
  });
  if (r.exitCode !== 0) ctx.events.warn(`could not read the build's machine-id and host keys (exit ${r.exitCode}); vmkiln test will not compare them`, "generalize");
  const { machineId, hostKeys } = parseIdentityOutput(out.join("\n"));
  const id: BuildIdentity = {
    instance_id: buildInstanceId(ctx),
    machine_id: machineId,
    host_key_fingerprint: ctx.hostKeyFingerprint,
    host_keys: hostKeys,
    user: ctx.spec.ssh.username,
    key_fingerprint: publicKeyFingerprint(ctx.sshKey?.publicKey),
  };
  ctx.buildIdentity = id;
  return id;
}
