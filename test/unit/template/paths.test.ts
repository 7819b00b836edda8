import { describe, expect, it } from "vitest";
import { documentOrder } from "../../../src/template/paths.js";

describe("documentOrder", () => {
  const order = documentOrder({ name: "x", drivers: { qemu: { cpus: 1 } }, provision: [{ shell: {} }] });

  it("orders present paths as they appear", () => {
    expect(order("name")).toBeLessThan(order("drivers.qemu.cpus"));
    expect(order("drivers.qemu.cpus")).toBeLessThan(order("provision[0].shell"));
  });

  it("puts a missing nested field with its nearest present parent", () => {
    expect(order("drivers.qemu.memory")).toBe(order("drivers.qemu"));
    expect(order("provision[0].shell.inline")).toBe(order("provision[0].shell"));
  });

  // Regression (issue 12): a missing top-level field has no separator to strip; the loop never ended.
  it("returns for a missing top-level field (it looped forever)", () => {
    expect(order("source")).toBe(order(""));
    expect(order("drivers")).toBeGreaterThan(order(""));
  });

  it("returns for paths it cannot take apart", () => {
    for (const p of ['x["a]b"]', "[", "]", "..", '["', "a[", "\u0000"]) expect(typeof order(p)).toBe("number");
  });
});

describe("didYouMean", () => {
  it("counts swapping two neighbours as one edit (cpsu → cpus)", async () => {
    const { didYouMean, editDistance } = await import("../../../src/template/paths.js");
    expect(editDistance("cpsu", "cpus")).toBe(1);
    expect(editDistance("wiat", "wait")).toBe(1);
    expect(editDistance("abc", "abc")).toBe(0);
    expect(editDistance("", "abc")).toBe(3);
    expect(didYouMean("cpsu", ["cpus", "memory"])).toBe("cpus");
  });
});
