import ssh2 from "ssh2";
import { UserError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { generateBuildKey } from "../ssh/keys.js";
import { readSmallFile } from "../util/small-file.js";

/** Far above any private key (an RSA 16384 key is ~12 KiB); what is bigger is not one. */
const MAX_KEY_BYTES = 64 * 1024;

export const sshKeyStep: Step = {
  name: "ssh key",
  async run(ctx) {
    const ssh = ctx.spec.ssh;
    ctx.events.addSecret(ssh.password);
    if (ssh.privateKeyFile) {
      const key = await readSmallFile(ssh.privateKeyFile, "ssh.private_key_file", "KEY_NOT_FOUND", MAX_KEY_BYTES);
      ctx.events.addSecret(key);
      // A key the SSH client cannot use would make the build wait out ssh.timeout for a login that
      // never succeeds: say so now (an encrypted key included: vmkiln has no passphrase to give).
      const parsed = ssh2.utils.parseKey(key);
      const why = parsed instanceof Error ? parsed.message : Array.isArray(parsed) || !parsed.isPrivateKey() ? "no private key in it" : undefined;
      if (why) throw new UserError("KEY_INVALID", `ssh.private_key_file: ${ssh.privateKeyFile} is not a private key vmkiln can use: ${why}`);
      const pub = await readSmallFile(ssh.privateKeyFile + ".pub", "ssh.private_key_file (.pub)", "KEY_NOT_FOUND", MAX_KEY_BYTES).catch(() => "");
      ctx.sshKey = { privateKey: key, publicKey: pub.trim(), privateKeyPath: ssh.privateKeyFile };
      return;
    }
    // The ephemeral key also serves password builds: cloud-init gets both.
    ctx.sshKey = await generateBuildKey(ctx.buildDir, `vmkiln-${ctx.buildId}`);
    ctx.events.addSecret(ctx.sshKey.privateKey);
  },
};
