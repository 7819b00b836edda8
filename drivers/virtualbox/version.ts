// The oldest VirtualBox we drive. 6.1 is the first release with every option the argv builders use
// together (`--graphicscontroller vmsvga` needs 6.0, `--firmware efi` boots Linux reliably from 6.1,
// `storagectl --portcount` replaced `--sataportcount` in 4.3); 6.0 and older are out of support.
import { UserError } from "../../src/errors.js";
import { parseVersion } from "./machinereadable.js";

export const MIN_VBOX_VERSION = "6.1";

/** Negative when a < b, 0 when equal, positive when a > b (numeric, missing parts are 0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The version from `--version` output, or a UserError saying why we refuse to go on. */
export function checkVersion(output: string, binary = "VBoxManage"): string {
  const v = parseVersion(output);
  if (!v.ok && v.reason === "vboxdrv") {
    throw new UserError("VBOX_BROKEN", `${binary} --version reports a broken VirtualBox install (the vboxdrv kernel driver): ${firstLine(v.raw)}`, {
      hint: "follow the instructions VBoxManage --version prints (e.g. sudo /sbin/vboxconfig), then retry",
    });
  }
  if (!v.ok) throw new UserError("VBOX_VERSION", `${binary} --version printed no version: ${JSON.stringify(firstLine(v.raw))}`);
  if (compareVersions(v.version, MIN_VBOX_VERSION) < 0) {
    throw new UserError("VBOX_TOO_OLD", `VirtualBox ${v.version} is too old: vmkiln needs VirtualBox ${MIN_VBOX_VERSION} or newer`, {
      hint: "install a current VirtualBox from https://www.virtualbox.org/wiki/Downloads",
    });
  }
  return v.version;
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

/** VirtualBox 7.0 added `--nat-localhostreachable<N>` (and made it off by default for new machines). */
export function hasNatLocalhostReachable(version: string): boolean {
  return compareVersions(version, "7.0") >= 0;
}
