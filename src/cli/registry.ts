// The one place src/ meets concrete drivers (docs/architecture.md "Layout and import direction").
import { createQemuDriver } from "../../drivers/qemu/index.js";
import { createVirtualBoxDriver, gcVirtualBoxEntry } from "../../drivers/virtualbox/index.js";
import { createVsphereDriver, gcVsphereEntry } from "../../drivers/vsphere/index.js";
import { chooseAccel, probeAccel } from "../../drivers/qemu/accel.js";
import type { DriverFactory, DriverGc } from "../pipeline/driver.js";
import type { BuildSpec, DriverName } from "../template/spec.js";

export const driverRegistry: Partial<Record<DriverName, DriverFactory>> = {
  qemu: createQemuDriver,
  virtualbox: createVirtualBoxDriver,
  vsphere: createVsphereDriver,
};

/** How `vmkiln gc` removes a driver's `remote` journal entries (objects on a hypervisor server). */
export const driverGc: Partial<Record<string, DriverGc>> = {
  vsphere: gcVsphereEntry,
  virtualbox: gcVirtualBoxEntry,
};

/**
 * The host cores one build keeps busy, for `vmkiln build`'s default --parallel: its guest's vCPUs,
 * and whether they are emulated (TCG: every vCPU a busy host thread). vSphere builds run on the
 * server and take none.
 */
export const driverLoad: Partial<Record<DriverName, (spec: BuildSpec) => { vcpus: number; emulated: boolean }>> = {
  qemu: (spec) => ({ vcpus: spec.drivers.qemu?.cpus ?? 2, emulated: chooseAccel(spec.drivers.qemu?.accelerator ?? "auto", probeAccel()).accel === "tcg" }),
  virtualbox: (spec) => ({ vcpus: spec.drivers.virtualbox?.cpus ?? 2, emulated: false }),
  vsphere: () => ({ vcpus: 0, emulated: false }),
};
