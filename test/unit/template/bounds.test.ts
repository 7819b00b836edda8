// Sizes, memory and durations no hypervisor or timer can honour fail validation (issue 12).
import path from "node:path";
import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseBootCommand } from "../../../src/bootcommand/parse.js";
import { specFromObject } from "../../../src/template/load.js";
import { parseDuration } from "../../../src/template/duration.js";
import { problemsOf } from "../../helpers/template.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");

const load = (raw: Record<string, unknown>) =>
  specFromObject({ name: "t", source: { cloud_image: { path: "./images/fixture.qcow2", checksum: "none" } }, drivers: { qemu: {} }, ...raw }, { baseDir: GOOD, env: {} });

describe("disk_size", () => {
  it.each([
    [0, "must be from 1 MiB to 64 TiB (got 0)"],
    ["0", 'must be from 1 MiB to 64 TiB (got "0")'],
    ["512K", 'must be from 1 MiB to 64 TiB (got "512K")'],
    ["65T", 'must be from 1 MiB to 64 TiB (got "65T")'],
    [Number.MAX_SAFE_INTEGER, `must be from 1 MiB to 64 TiB (got ${Number.MAX_SAFE_INTEGER})`],
    ["99999999999999999999999G", 'must be from 1 MiB to 64 TiB (got "99999999999999999999999G")'],
  ])("rejects %j (it passed)", (size, message) => {
    expect(problemsOf(() => load({ drivers: { qemu: { disk_size: size } } }))).toEqual({ "drivers.qemu.disk_size": message });
    expect(problemsOf(() => load({ drivers: { virtualbox: { disk_size: size } } }))).toEqual({ "drivers.virtualbox.disk_size": message });
  });

  it.each([
    ["1M", 1024 ** 2],
    ["64T", 64 * 1024 ** 4],
    ["20G", 20 * 1024 ** 3],
  ])("accepts %j", (size, bytes) => {
    expect(load({ drivers: { qemu: { disk_size: size } } }).drivers.qemu?.diskSize).toBe(bytes);
  });
});

describe("memory", () => {
  it.each([
    [2, "must be from 4 MiB to 24 TiB (got 2)"],
    ["1M", 'must be from 4 MiB to 24 TiB (got "1M")'],
    [99_999_999_999, "must be from 4 MiB to 24 TiB (got 99999999999)"],
    ["25T", 'must be from 4 MiB to 24 TiB (got "25T")'],
  ])("rejects %j (it passed)", (memory, message) => {
    expect(problemsOf(() => load({ drivers: { qemu: { memory } } }))).toEqual({ "drivers.qemu.memory": message });
  });

  it("accepts 4 MiB to 24 TiB", () => {
    expect(load({ drivers: { qemu: { memory: 4 } } }).drivers.qemu?.memory).toBe(4);
    expect(load({ drivers: { qemu: { memory: "24T" } } }).drivers.qemu?.memory).toBe(24 * 1024 * 1024);
  });
});

describe("durations", () => {
  it("rejects what a timer cannot wait for (30d fired after 1 ms)", () => {
    expect(problemsOf(() => load({ ssh: { timeout: "30d" } }))).toEqual({ "ssh.timeout": 'duration "30d" is too long: at most 24d20h31m23s' });
    expect(problemsOf(() => load({ shutdown: { timeout: 1e300 } }))).toEqual({ "shutdown.timeout": "duration 1e+300 is too long: at most 24d20h31m23s" });
    expect(problemsOf(() => load({ provision: [{ shell: { inline: ["true"], timeout: "9".repeat(400) + "h" } }] }))).toEqual({
      "provision[0].shell.timeout": `duration "${"9".repeat(400)}h" is too long: at most 24d20h31m23s`,
    });
  });

  it("accepts up to 2^31-1 ms", () => {
    expect(parseDuration("24d20h31m23s")).toBe(2_147_483_000);
    expect(parseDuration("24d20h31m23s647ms")).toBe(2 ** 31 - 1);
    expect(() => parseDuration("24d20h31m23s648ms")).toThrow(/too long/);
    expect(load({ ssh: { timeout: "24d" } }).ssh.timeoutMs).toBe(24 * 86_400_000);
  });

  it("a boot-command wait longer than a timer holds is an error, not a 1 ms wait", () => {
    for (const w of ["<wait720h>", "<wait2147484s>", `<wait${"9".repeat(30)}>`]) {
      expect(() => parseBootCommand(["a", w])).toThrow(UserError);
      expect(() => parseBootCommand(["a", w])).toThrow(/boot_command\[1\], column 1: <wait.*> is too long: a wait is at most 596h31m23s/);
    }
    expect(parseBootCommand("<wait596h31m23s>")).toEqual([{ kind: "wait", ms: 2_147_483_000 }]);
  });
});
