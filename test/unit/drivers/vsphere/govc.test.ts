import { chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseBootCommand } from "../../../../src/bootcommand/parse.js";
import { govcKeystrokeCalls, govcUsable } from "../../../../drivers/vsphere/govc.js";
import { tempDir } from "../../../helpers/tmp.js";

const VM = "/DC0/vm/vmkiln-1";

describe("govc vm.keystrokes argv", () => {
  it("one call per key, the key interval between, waits kept", () => {
    expect(govcKeystrokeCalls(VM, parseBootCommand("a<wait1s>B<enter>"), 100)).toEqual([
      { argv: ["vm.keystrokes", "-vm", VM, "-c", "0x04"] },
      { waitMs: 1000 },
      { argv: ["vm.keystrokes", "-vm", VM, "-c", "0x05", "-ls=true"] },
      { waitMs: 100 },
      { argv: ["vm.keystrokes", "-vm", VM, "-c", "0x28"] },
    ]);
  });

  it("held modifiers become flags (Ctrl+Alt+Del)", () => {
    expect(govcKeystrokeCalls(VM, parseBootCommand("<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>"), 0)).toEqual([
      { argv: ["vm.keystrokes", "-vm", VM, "-c", "0x4c", "-lc=true", "-la=true"] },
    ]);
  });

  it("no interval calls when the interval is 0", () => {
    expect(govcKeystrokeCalls(VM, parseBootCommand("ab"), 0).every((c) => "argv" in c)).toBe(true);
  });
});

describe("govc is used only when installed and configured", () => {
  const dir = tempDir("vmkiln-govc-");
  writeFileSync(join(dir, "govc"), "#!/bin/sh\n");
  chmodSync(join(dir, "govc"), 0o755);

  it.each([
    [{ GOVC_URL: "https://vc", PATH: `/nonexistent:${dir}` }, join(dir, "govc")],
    [{ PATH: dir }, undefined],
    [{ GOVC_URL: "https://vc", PATH: "/nonexistent" }, undefined],
  ])("%j", (env, want) => expect(govcUsable(env)).toBe(want));
});
