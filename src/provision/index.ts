import type { ProvisionerSpec } from "../template/spec.js";
import { runAnsible } from "./ansible.js";
import { runAnsibleLocal } from "./ansible-local.js";
import { runBreakpoint } from "./breakpoint.js";
import { runWaitCloudInit } from "./cloud-init.js";
import { runFile } from "./file.js";
import { runRestart } from "./restart.js";
import { runShell } from "./shell.js";
import { runShellLocal } from "./shell-local.js";
import type { ProvisionContext } from "./types.js";

/** `index` is the provisioner's place in the list (names its files in the build dir). */
export function runProvisioner(p: ProvisionerSpec, ctx: ProvisionContext, index = 0): Promise<void> {
  switch (p.type) {
    case "shell":
      return runShell(p, ctx);
    case "file":
      return runFile(p, ctx);
    case "wait_cloud_init":
      return runWaitCloudInit(p, ctx);
    case "ansible":
      return runAnsible(p, ctx, index);
    case "ansible_local":
      return runAnsibleLocal(p, ctx);
    case "shell_local":
      return runShellLocal(p, ctx, index);
    case "restart":
      return runRestart(p, ctx);
    case "breakpoint":
      return runBreakpoint(p, ctx);
  }
}
