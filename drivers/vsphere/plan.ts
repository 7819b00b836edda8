// The vSphere build, top to bottom. The generic steps are reused; what differs from the QEMU flow:
// power-on does not wait for SSH (an installer needs its boot command first, and the guest IP only
// appears after the install), and after shutdown the VM is exported (then deleted), or kept as a
// template / snapshot / as is.
import type { Step } from "../../src/pipeline/step.js";
import { exportStep } from "../../src/steps/export.js";
import { fetchSourceStep } from "../../src/steps/fetch-source.js";
import { generalizeStep } from "../../src/steps/generalize.js";
import { prepareStep } from "../../src/steps/prepare.js";
import { provisionStep } from "../../src/steps/provision.js";
import { shutdownStep } from "../../src/steps/shutdown.js";
import { sshKeyStep } from "../../src/steps/ssh-key.js";
import { waitSshStep } from "../../src/steps/wait-ssh.js";
import type { BuildSpec } from "../../src/template/spec.js";
import type { VsphereDriver } from "./index.js";
import { bootCommandStep, createVsphereVmStep, finishStep, installMediaStep, powerOnStep } from "./steps.js";

export function vspherePlan(spec: BuildSpec, driver: VsphereDriver): Step[] {
  const after = spec.drivers.vsphere?.after ?? "export";
  const tail: Step[] = [provisionStep, generalizeStep, shutdownStep, after === "export" ? exportStep : finishStep(driver, after)];
  if (spec.source.kind === "clone") {
    return [prepareStep, sshKeyStep, createVsphereVmStep, powerOnStep, waitSshStep, ...tail];
  }
  return [prepareStep, fetchSourceStep, sshKeyStep, installMediaStep, createVsphereVmStep, powerOnStep, bootCommandStep, waitSshStep, ...tail];
}
