// The one place src/ meets concrete drivers (docs/architecture.md "Layout and import direction").
import { createQemuDriver } from "../../drivers/qemu/index.js";
import { createVirtualBoxDriver, gcVirtualBoxEntry } from "../../drivers/virtualbox/index.js";
import { createVsphereDriver, gcVsphereEntry } from "../../drivers/vsphere/index.js";
import type { DriverFactory, DriverGc } from "../pipeline/driver.js";
import type { DriverName } from "../template/spec.js";

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
