// Checks done before any VM starts: host tools the provisioners need must be installed, so a missing
// ansible-playbook fails in a second with the fix instead of after a 2-minute boot.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type { ProvisionerSpec } from "../template/spec.js";
import { ansibleMissing } from "./ansible.js";
import { appliesTo } from "./options.js";

/** PATH lookup without spawning (what execvp would find); undefined when not there. */
export function findOnPath(command: string, path: string | undefined): string | undefined {
  const executable = (f: string) => {
    try {
      accessSync(f, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes("/")) return executable(command) ? command : undefined;
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir) continue;
    const f = join(dir, command);
    if (executable(f)) return f;
  }
  return undefined;
}

/** Throws the first provisioner's UserError (exit 2) naming it and the fix. */
export function preflightProvisioners(list: ProvisionerSpec[], driver: string, env: NodeJS.ProcessEnv = process.env): void {
  for (const [i, p] of list.entries()) {
    if (!appliesTo(p.options, driver)) continue;
    if (p.type === "ansible") {
      if (!findOnPath(p.command, p.env.PATH ?? env.PATH)) throw ansibleMissing(`provision[${i}] ${p.name}`, p.command);
    }
  }
}
