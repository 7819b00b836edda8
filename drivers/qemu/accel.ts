// Choosing the accelerator. `auto` must use KVM only when it can actually run the guest: on hosts
// with kvm-pvm (a paravirtual KVM for nested setups) /dev/kvm opens fine, but stock guests die with
// "KVM internal error. Suberror: 1 … emulation failure" (reference/test-guest.md). QEMU's own
// `-accel kvm -accel tcg` fallback only covers KVM failing to *open*, so we decide ourselves and say
// so loudly — never a silent TCG build that takes 5x longer.
import { accessSync, constants, existsSync } from "node:fs";
import type { Accelerator } from "../../src/template/spec.js";

export interface AccelProbe {
  /** /dev/kvm exists and is read-write for us. */
  kvmDevice: boolean;
  /** /sys/module/kvm_pvm exists: KVM here cannot run stock guests. */
  kvmPvm: boolean;
}

export interface AccelChoice {
  accel: "kvm" | "tcg";
  /** Printed as a warning when set: why we are not on the accelerator the user would expect. */
  warning?: string;
  /** KVM was chosen by auto: if the guest hits "KVM internal error", restart it under TCG. */
  fallbackToTcgOnCrash: boolean;
}

export function probeAccel(): AccelProbe {
  let kvmDevice = false;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    kvmDevice = true;
  } catch {
    kvmDevice = false;
  }
  // VMKILN_ASSUME_KVM_OK lets tests exercise the runtime fallback on a kvm-pvm host.
  const kvmPvm = existsSync("/sys/module/kvm_pvm") && process.env.VMKILN_ASSUME_KVM_OK !== "1";
  return { kvmDevice, kvmPvm };
}

const SLOW = "TCG software emulation is several times slower than KVM";

export function chooseAccel(requested: Accelerator, probe: AccelProbe): AccelChoice {
  switch (requested) {
    case "tcg":
      return { accel: "tcg", fallbackToTcgOnCrash: false };
    case "kvm":
      if (!probe.kvmDevice) {
        return { accel: "kvm", fallbackToTcgOnCrash: false, warning: "accelerator: kvm was requested but /dev/kvm is not accessible; QEMU will fail to start (use accelerator: auto or tcg)" };
      }
      if (probe.kvmPvm) {
        return { accel: "kvm", fallbackToTcgOnCrash: false, warning: "accelerator: kvm was requested on a kvm-pvm host, where stock guests crash with \"KVM internal error\" (use accelerator: auto or tcg)" };
      }
      return { accel: "kvm", fallbackToTcgOnCrash: false };
    case "auto":
      if (!probe.kvmDevice) {
        return { accel: "tcg", fallbackToTcgOnCrash: false, warning: `KVM is not available (/dev/kvm missing or not accessible): falling back to TCG. ${SLOW}.` };
      }
      if (probe.kvmPvm) {
        return { accel: "tcg", fallbackToTcgOnCrash: false, warning: `KVM on this host is kvm-pvm (/sys/module/kvm_pvm), which crashes stock guests: falling back to TCG. ${SLOW}.` };
      }
      return { accel: "kvm", fallbackToTcgOnCrash: true };
  }
}

/** Lines QEMU prints when KVM cannot run the guest (test-guest.md "Booting it"). */
export function isKvmCrashLine(line: string): boolean {
  return /KVM internal error|failed to set MSR|kvm run failed/i.test(line);
}
