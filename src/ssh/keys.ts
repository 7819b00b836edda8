// Per-build ephemeral ed25519 key: injected through cloud-init, never written outside the build dir.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import ssh2 from "ssh2";
import type { SshKeyPair } from "../pipeline/context.js";

export async function generateBuildKey(buildDir: string, comment: string): Promise<SshKeyPair> {
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
  const privateKeyPath = join(buildDir, "ssh_key");
  // 0600 so OpenSSH tools (ansible, a user's `ssh -i` in --debug mode) accept it.
  await writeFile(privateKeyPath, pair.private, { mode: 0o600 });
  await writeFile(privateKeyPath + ".pub", pair.public + "\n", { mode: 0o644 });
  return { privateKey: pair.private, publicKey: pair.public.trim(), privateKeyPath };
}

/** OpenSSH-style fingerprint of a raw host key blob: `SHA256:<base64 without padding>`. */
export function fingerprint(hostKey: Buffer): string {
  return "SHA256:" + createHash("sha256").update(hostKey).digest("base64").replace(/=+$/, "");
}
