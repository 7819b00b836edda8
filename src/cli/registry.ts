// The one place src/ meets concrete drivers (DESIGN.md "Imports point one way").
import { createQemuDriver } from "../../drivers/qemu/index.js";
import type { DriverFactory } from "../pipeline/driver.js";
import type { DriverName } from "../template/spec.js";

export const driverRegistry: Partial<Record<DriverName, DriverFactory>> = {
  qemu: createQemuDriver,
};
