// One list of steps, readable top to bottom, chosen by source kind (DESIGN.md "Data flow").
import { UserError } from "../errors.js";
import { createVmStep, startVmStep } from "../steps/create-vm.js";
import { exportStep } from "../steps/export.js";
import { fetchSourceStep } from "../steps/fetch-source.js";
import { generalizeStep } from "../steps/generalize.js";
import { makeCidataStep } from "../steps/make-cidata.js";
import { prepareStep } from "../steps/prepare.js";
import { provisionStep } from "../steps/provision.js";
import { shutdownStep } from "../steps/shutdown.js";
import { sshKeyStep } from "../steps/ssh-key.js";
import { waitSshStep } from "../steps/wait-ssh.js";
import type { BuildSpec } from "../template/spec.js";
import type { Driver } from "./driver.js";
import type { Step } from "./step.js";

export function planSteps(spec: BuildSpec, driver: Driver): Step[] {
  if (!driver.capabilities.sources.includes(spec.source.kind === "iso" ? "iso" : "cloud-image")) {
    throw new UserError("SOURCE_UNSUPPORTED", `source: the ${driver.name} driver cannot build from a ${spec.source.kind}`);
  }
  for (const f of spec.output.formats) {
    if (!driver.capabilities.exports.includes(f)) throw new UserError("FORMAT_UNSUPPORTED", `output.formats: the ${driver.name} driver cannot export ${f}`);
  }
  if (spec.source.kind === "iso") {
    throw new UserError("SOURCE_UNSUPPORTED", "source.iso: installer ISO builds are not available yet");
  }
  return [
    prepareStep,
    fetchSourceStep,
    sshKeyStep,
    makeCidataStep,
    createVmStep,
    startVmStep,
    waitSshStep,
    provisionStep,
    generalizeStep,
    shutdownStep,
    exportStep,
  ];
}
