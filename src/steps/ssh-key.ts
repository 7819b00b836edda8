import { readFile } from "node:fs/promises";
import { UserError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { generateBuildKey } from "../ssh/keys.js";

export const sshKeyStep: Step = {
  name: "ssh key",
  async run(ctx) {
    const ssh = ctx.spec.ssh;
    ctx.events.addSecret(ssh.password);
    if (ssh.privateKeyFile) {
      const key = await readFile(ssh.privateKeyFile, "utf8").catch(() => {
        throw new UserError("KEY_NOT_FOUND", `ssh.private_key_file: cannot read ${ssh.privateKeyFile}`);
      });
      ctx.events.addSecret(key);
      const pub = await readFile(ssh.privateKeyFile + ".pub", "utf8").catch(() => "");
      ctx.sshKey = { privateKey: key, publicKey: pub.trim(), privateKeyPath: ssh.privateKeyFile };
      return;
    }
    // The ephemeral key also serves password builds: cloud-init gets both.
    ctx.sshKey = await generateBuildKey(ctx.buildDir, `vmkiln-${ctx.buildId}`);
    ctx.events.addSecret(ctx.sshKey.privateKey);
  },
};
