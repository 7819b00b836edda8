import type { ProvisionerSpec } from "../template/spec.js";
import { runWaitCloudInit } from "./cloud-init.js";
import { runFile } from "./file.js";
import { runShell } from "./shell.js";
import type { ProvisionContext } from "./types.js";

export function runProvisioner(p: ProvisionerSpec, ctx: ProvisionContext): Promise<void> {
  switch (p.type) {
    case "shell":
      return runShell(p, ctx);
    case "file":
      return runFile(p, ctx);
    case "wait_cloud_init":
      return runWaitCloudInit(p, ctx);
  }
}
