// Per-build ephemeral ed25519 key: injected through cloud-init, never written outside the build dir.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import ssh2 from "ssh2";
import { BuildError } from "../errors.js";
import type { SshKeyPair } from "../pipeline/context.js";

export interface Ed25519Pair {
  /** OpenSSH private key (openssh-key-v1 PEM). */
  private: string;
  /** `ssh-ed25519 AAAA… comment`. */
  public: string;
}

type Generate = (comment: string | undefined) => Ed25519Pair;
const ssh2Generate: Generate = (comment) => ssh2.utils.generateKeyPairSync("ed25519", comment === undefined ? {} : { comment });

/** Length of an ed25519 public key blob: string "ssh-ed25519", string key (32 bytes). */
const ED25519_BLOB = 4 + 11 + 4 + 32;

/** Both halves parse and the public key is 32 bytes. */
export function wellFormedEd25519(pair: Ed25519Pair): boolean {
  const pub = ssh2.utils.parseKey(pair.public);
  const priv = ssh2.utils.parseKey(pair.private);
  if (pub instanceof Error || priv instanceof Error || Array.isArray(pub) || Array.isArray(priv)) return false;
  return pub.getPublicSSH().length === ED25519_BLOB && priv.getPublicSSH().equals(pub.getPublicSSH());
}

/**
 * An ed25519 key pair from ssh2, checked. ssh2's generator strips leading zero bytes off the public
 * key (lib/keygen.js, parseDERs), so about one key in 256 has a 31-byte public key that neither ssh2
 * nor sshd accepts (https://github.com/mscdex/ssh2/issues/1390, #1513): a build given such a key
 * waited for an SSH login that could never succeed. Such a pair is thrown away and a new one made.
 */
export function generateEd25519(comment?: string, generate: Generate = ssh2Generate): Ed25519Pair {
  for (let attempt = 0; attempt < 16; attempt++) {
    const pair = generate(comment);
    if (wellFormedEd25519(pair)) return pair;
  }
  throw new BuildError("SSH_KEYGEN", "could not generate a well-formed ed25519 key in 16 attempts");
}

export async function generateBuildKey(buildDir: string, comment: string): Promise<SshKeyPair> {
  const pair = generateEd25519(comment);
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
