// A known_hosts file holding only the pinned guest key, in the build dir. OpenSSH tools (ansible,
// `ssh` from the --debug hint, shell_local scripts) check the guest against it with
// StrictHostKeyChecking=yes, so host key checking stays on without touching ~/.ssh/known_hosts.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The key type named inside an SSH wire-format public key blob (`string type, …`). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) throw new Error("host key blob too short");
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) throw new Error("host key blob has no type field");
  return blob.subarray(4, 4 + len).toString("latin1");
}

/** OpenSSH's host pattern: a bare host on port 22, `[host]:port` otherwise. */
export function knownHostsPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostsPattern(host, port)} ${keyTypeOf(blob)} ${blob.toString("base64")}\n`;
}

export async function writeKnownHosts(buildDir: string, endpoint: { host: string; port: number }, blob: Buffer): Promise<string> {
  const path = join(buildDir, "known_hosts");
  await writeFile(path, knownHostsLine(endpoint.host, endpoint.port, blob), { mode: 0o600 });
  return path;
}

/** `-o` options that make OpenSSH trust exactly the pinned key and nothing in ~/.ssh. */
export function strictHostKeyOptions(knownHostsPath: string): string[] {
  return ["-o", `UserKnownHostsFile=${knownHostsPath}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no"];
}

/** The command a person runs to get into the build VM (`--debug`, breakpoints). */
export function sshCommandLine(o: { host: string; port: number; username: string; privateKeyPath: string; knownHostsPath: string | undefined }): string {
  const hk = o.knownHostsPath ? strictHostKeyOptions(o.knownHostsPath) : ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
  return ["ssh", "-i", o.privateKeyPath, "-p", String(o.port), "-o", "IdentitiesOnly=yes", ...hk, `${o.username}@${o.host}`]
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(" ");
}
