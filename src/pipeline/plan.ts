// One list of steps, readable top to bottom, chosen by source kind (docs/architecture.md "Data flow").
import { UserError } from "../errors.js";
import { bootCommandStep } from "../steps/boot-command.js";
import { createVmStep, startVmStep } from "../steps/create-vm.js";
import { exportStep } from "../steps/export.js";
import { fetchSourceStep } from "../steps/fetch-source.js";
import { generalizeStep } from "../steps/generalize.js";
import { installerMediaStep } from "../steps/installer-media.js";
import { makeCidataStep } from "../steps/make-cidata.js";
import { prepareStep } from "../steps/prepare.js";
import { serveHttpStep } from "../steps/serve-http.js";
import { provisionStep } from "../steps/provision.js";
import { shutdownStep } from "../steps/shutdown.js";
import { sbomStep } from "../steps/sbom.js";
import { publishStep } from "../steps/publish.js";
import { sshKeyStep } from "../steps/ssh-key.js";
import { waitInstallStep } from "../steps/wait-install.js";
import { waitSshStep } from "../steps/wait-ssh.js";
import { testArtifactsStep } from "../steps/test-artifacts.js";
import { prepareChecks } from "../check/run.js";
import type { BuildSpec } from "../template/spec.js";
import type { Driver } from "./driver.js";
import type { Step } from "./step.js";

export function planSteps(spec: BuildSpec, driver: Driver): Step[] {
  const steps = planBuildSteps(spec, driver);
  if (!spec.test) return steps;
  // `test:` (issue 16): boot the exported artifacts as their user would, after export. What it
  // needs is checked now (formats exported, gossfiles read and compiled): exit 2 before the build,
  // not after it.
  for (const f of spec.test.formats) {
    if (!spec.output.formats.includes(f)) throw new UserError("TEST_FORMAT", `test.formats: this build exports no ${f} (output.formats: ${spec.output.formats.join(", ")})`);
  }
  prepareChecks({ checks: spec.test.checks, varsFile: spec.test.vars, gossBinary: spec.test.gossBinary });
  return [...steps, testArtifactsStep];
}

function planBuildSteps(spec: BuildSpec, driver: Driver): Step[] {
  if (!driver.capabilities.sources.includes(spec.source.kind)) {
    throw new UserError("SOURCE_UNSUPPORTED", `source: the ${driver.name} driver cannot build from a ${spec.source.kind}`);
  }
  if (spec.source.library && !driver.capabilities.contentLibrary) {
    throw new UserError("SOURCE_UNSUPPORTED", `source.${spec.source.kind}.content_library: the ${driver.name} driver cannot read a content library`);
  }
  for (const f of spec.output.formats) {
    if (!driver.capabilities.exports.includes(f)) throw new UserError("FORMAT_UNSUPPORTED", `output.formats: the ${driver.name} driver cannot export ${f}`);
  }
  if (driver.plan) return driver.plan(spec);
  if (spec.source.kind === "iso") return planIsoSteps(spec, driver);
  return [
    prepareStep,
    fetchSourceStep,
    sshKeyStep,
    ...(spec.http ? [serveHttpStep] : []),
    makeCidataStep,
    createVmStep,
    startVmStep,
    waitSshStep,
    provisionStep,
    ...(spec.output.sbom ? [sbomStep] : []),
    generalizeStep,
    shutdownStep,
    exportStep,
    ...(spec.output.publish.length > 0 ? [publishStep] : []),
  ];
}

/**
 * Installer ISO (issue 4): an empty disk, the installer booted from the ISO, the boot command typed,
 * kickstart/preseed served over HTTP or on media; the install ends with the VM stopping; then the
 * installed disk boots and the build goes on as for cloud images. No cidata: the installer creates
 * the SSH user (its key can be rendered into the answer file as ${ssh.public_key}).
 */
function planIsoSteps(spec: BuildSpec, driver: Driver): Step[] {
  if (spec.install?.boot && spec.install.boot.command.length > 0 && (!driver.capabilities.keystrokes || !driver.sendKeys)) {
    throw new UserError("KEYSTROKES_UNSUPPORTED", `boot.command: the ${driver.name} driver cannot type keys`);
  }
  if (!driver.waitForGuestStop || !driver.restart) {
    throw new UserError("SOURCE_UNSUPPORTED", `source.iso: the ${driver.name} driver cannot follow an install`);
  }
  return [
    prepareStep,
    fetchSourceStep,
    sshKeyStep,
    ...(spec.http ? [serveHttpStep] : []),
    ...(spec.install?.media ? [installerMediaStep] : []),
    createVmStep,
    startVmStep,
    ...(spec.install?.boot ? [bootCommandStep] : []),
    waitInstallStep,
    waitSshStep,
    provisionStep,
    ...(spec.output.sbom ? [sbomStep] : []),
    generalizeStep,
    shutdownStep,
    exportStep,
    ...(spec.output.publish.length > 0 ? [publishStep] : []),
  ];
}
