// The vSphere build, top to bottom. The shared steps do the work they do for every driver (HTTP
// server, installer media, create vm, boot command, SSH, provisioning, export); what differs from
// the QEMU flow: power-on does not wait for SSH (an installer needs its boot command first, and the
// guest IP only appears once the installed system runs VMware Tools), the install ends with the
// guest coming up rather than powering off (so http.expect is waited for on its own), a
// content-library ISO is not fetched, and after shutdown the VM is exported (then deleted),
// captured into a content library (then deleted), or kept as a template / snapshot / as is.
import type { Step } from "../../src/pipeline/step.js";
import { bootCommandStep } from "../../src/steps/boot-command.js";
import { createVmStep } from "../../src/steps/create-vm.js";
import { exportStep } from "../../src/steps/export.js";
import { fetchSourceStep } from "../../src/steps/fetch-source.js";
import { generalizeStep } from "../../src/steps/generalize.js";
import { installerMediaStep } from "../../src/steps/installer-media.js";
import { prepareStep } from "../../src/steps/prepare.js";
import { provisionStep } from "../../src/steps/provision.js";
import { serveHttpStep } from "../../src/steps/serve-http.js";
import { shutdownStep } from "../../src/steps/shutdown.js";
import { sbomStep } from "../../src/steps/sbom.js";
import { sshKeyStep } from "../../src/steps/ssh-key.js";
import { waitSshStep } from "../../src/steps/wait-ssh.js";
import type { BuildSpec } from "../../src/template/spec.js";
import type { VsphereDriver } from "./index.js";
import { captureStep, finishStep, powerOnStep, waitHttpFetchStep } from "./steps.js";

export function vspherePlan(spec: BuildSpec, driver: VsphereDriver): Step[] {
  const after = spec.drivers.vsphere?.after ?? "export";
  const last = after === "export" ? exportStep : after === "library" ? captureStep(driver) : finishStep(driver, after);
  // The SBOM goes into the output directory: only an export writes one.
  const tail: Step[] = [provisionStep, ...(spec.output.sbom && after === "export" ? [sbomStep] : []), generalizeStep, shutdownStep, last];
  if (spec.source.kind === "clone") {
    return [prepareStep, sshKeyStep, createVmStep, powerOnStep, waitSshStep, ...tail];
  }
  return [
    prepareStep,
    ...(spec.source.library ? [] : [fetchSourceStep]),
    sshKeyStep,
    ...(spec.http ? [serveHttpStep] : []),
    ...(spec.install?.media ? [installerMediaStep] : []),
    createVmStep,
    powerOnStep,
    ...(spec.install?.boot ? [bootCommandStep] : []),
    ...(spec.http && spec.http.expect.length > 0 ? [waitHttpFetchStep] : []),
    waitSshStep,
    ...tail,
  ];
}
