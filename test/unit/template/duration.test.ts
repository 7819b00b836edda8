import { describe, expect, it } from "vitest";
import { parseDuration, parseSize } from "../../../src/template/duration.js";

describe("parseDuration", () => {
  it.each([
    ["90s", 90_000],
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["1.5s", 1500],
    ["2d", 172_800_000],
    ["45", 45_000],
    [12, 12_000],
    [0.25, 250],
  ] as const)("%j → %d ms", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(["", "10 minutes", "m", "5x", "1h 30m", "-5s"])("rejects %j", (input) => {
    expect(() => parseDuration(input)).toThrow(/invalid duration/);
  });
  it("rejects negative numbers", () => expect(() => parseDuration(-1)).toThrow(/non-negative/));
});

describe("parseSize", () => {
  it.each([
    ["4G", 4 * 1024 ** 3],
    ["20GiB", 20 * 1024 ** 3],
    ["512M", 512 * 1024 ** 2],
    ["512mb", 512 * 1024 ** 2],
    ["1T", 1024 ** 4],
    ["64K", 65_536],
    ["1.5G", 1.5 * 1024 ** 3],
    ["4096", 4096],
    ["4096B", 4096],
    [1000, 1000],
  ] as const)("%j → %d bytes", (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it("uses the default unit for unit-less values only", () => {
    expect(parseSize("2048", { defaultUnit: 1024 ** 2 })).toBe(2048 * 1024 ** 2);
    expect(parseSize(2, { defaultUnit: 1024 ** 2 })).toBe(2 * 1024 ** 2);
    expect(parseSize("1G", { defaultUnit: 1024 ** 2 })).toBe(1024 ** 3);
  });

  it.each(["", "4X", "G", "1 2G"])("rejects %j", (input) => {
    expect(() => parseSize(input)).toThrow(/invalid size/);
  });
});
