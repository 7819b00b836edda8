// Regressions the --machinereadable fuzz target (test/unit/fuzz/machinereadable.fuzz.test.ts)
// found, each with its minimal counterexample.
import { describe, expect, it } from "vitest";
import { parseMachineReadable, parseVmInfo } from "../../../../drivers/virtualbox/machinereadable.js";

describe("--machinereadable: found by fuzzing", () => {
  it('a bare name is unescaped like a quoted one: `\\"=""` is the name `"`', () => {
    // Counterexample: [[['"', "", false]], "\n"]. VBoxManage escapes a name whether it quotes it or not.
    expect(parseMachineReadable('\\"=""\n')).toEqual(new Map([['"', ""]]));
    // So a storage controller named `a"b` keeps its attachments.
    const info = parseVmInfo('storagecontrollername0="a\\"b"\nstoragecontrollertype0="IntelAhci"\na\\"b-0-0="/vms/disk.vdi"\n');
    expect(info.controllers).toEqual([{ name: 'a"b', type: "IntelAhci" }]);
    expect(info.attachments).toEqual({ 'a"b-0-0': "/vms/disk.vdi" });
  });

  it("a value with a newline (a VM description) runs on to the line its closing quote ends", () => {
    // Counterexample: [[["é", "\n", false]], "\n"]. Newlines are not escaped in the output.
    expect(parseMachineReadable('é="\n"\n')).toEqual(new Map([["é", "\n"]]));
    // A description cannot inject a key: its quotes are escaped, its newline is not.
    const out = 'name="vm"\ndescription="line one\nVMState=\\"running\\"\nlast"\r\nVMState="poweroff"\r\n';
    expect(parseVmInfo(out)).toMatchObject({ name: "vm", state: "poweroff" });
    expect(parseVmInfo(out).raw.get("description")).toBe('line one\nVMState="running"\nlast');
  });

  it("an unclosed quote that no later line closes stays on its own line", () => {
    expect(parseMachineReadable('a="open\nb="x"y\nc="ok"\n')).toEqual(
      new Map([
        ["a", "open"],
        ["b", "x"],
        ["c", "ok"],
      ]),
    );
  });
});
