import { describe, expect, it } from "vitest";
import { KEY_NAMES, type KeyName } from "../../../../src/bootcommand/keys.js";
import { parseBootCommand } from "../../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../../src/bootcommand/text.js";
import {
  govcKeystrokeArgs,
  toUsbBatches,
  toUsbKeyEvents,
  usbHidCode,
  usbKeyEventsToEvents,
} from "../../../../drivers/vsphere/usb-hid.js";
import { CANONICAL } from "../../bootcommand/corpus.js";

// USB HID Usage Tables, Keyboard/Keypad page (0x07), written out independently.
const PUBLISHED: Array<[KeyName, number]> = [
  ..."abcdefghijklmnopqrstuvwxyz".split("").map((c, i) => [c as KeyName, 0x04 + i] as [KeyName, number]),
  ..."123456789".split("").map((c, i) => [c as KeyName, 0x1e + i] as [KeyName, number]),
  ["0", 0x27], ["enter", 0x28], ["esc", 0x29], ["backspace", 0x2a], ["tab", 0x2b], ["space", 0x2c],
  ["minus", 0x2d], ["equal", 0x2e], ["bracketLeft", 0x2f], ["bracketRight", 0x30], ["backslash", 0x31],
  ["semicolon", 0x33], ["quote", 0x34], ["backquote", 0x35], ["comma", 0x36], ["period", 0x37], ["slash", 0x38],
  ...Array.from({ length: 12 }, (_, i) => [`f${i + 1}` as KeyName, 0x3a + i] as [KeyName, number]),
  ["insert", 0x49], ["home", 0x4a], ["pageUp", 0x4b], ["delete", 0x4c], ["end", 0x4d], ["pageDown", 0x4e],
  ["right", 0x4f], ["left", 0x50], ["down", 0x51], ["up", 0x52], ["menu", 0x65],
  ["leftCtrl", 0xe0], ["leftShift", 0xe1], ["leftAlt", 0xe2], ["leftSuper", 0xe3],
  ["rightCtrl", 0xe4], ["rightShift", 0xe5], ["rightAlt", 0xe6], ["rightSuper", 0xe7],
];

describe("HID usage table", () => {
  it("covers every key exactly once", () => {
    expect(PUBLISHED.map(([k]) => k).sort()).toEqual([...KEY_NAMES].sort());
  });
  it.each(PUBLISHED)("%s → usage 0x%s", (key, usage) => {
    expect(usbHidCode(key)).toBe(usage * 65536 + 7);
    expect(toUsbKeyEvents([{ kind: "press", key }])).toEqual([{ usbHidCode: usage * 65536 + 7, modifiers: {} }]);
  });
  it("encodes Enter as 0x00280007 (govc's documented wire form)", () => {
    expect(usbHidCode("enter")).toBe(0x00280007);
  });
});

describe("encoding", () => {
  it("puts Shift for a shifted character in the modifiers", () => {
    expect(toUsbKeyEvents(parseBootCommand(["A~"]))).toEqual([
      { usbHidCode: usbHidCode("a"), modifiers: { leftShift: true } },
      { usbHidCode: usbHidCode("backquote"), modifiers: { leftShift: true } },
    ]);
  });
  it("turns held modifiers into flags on each event until Off", () => {
    expect(toUsbKeyEvents(parseBootCommand(["<leftCtrlOn><leftAltOn><del><leftAltOff>C<leftCtrlOff>x"]))).toEqual([
      { usbHidCode: usbHidCode("delete"), modifiers: { leftControl: true, leftAlt: true } },
      { usbHidCode: usbHidCode("c"), modifiers: { leftShift: true, leftControl: true } },
      { usbHidCode: usbHidCode("x"), modifiers: {} },
    ]);
    expect(toUsbKeyEvents(parseBootCommand(["<rightCtrlOn><rightShiftOn><rightAltOn><rightSuperOn><leftSuperOn>a"]))).toEqual([
      { usbHidCode: usbHidCode("a"), modifiers: { rightShift: true, rightControl: true, rightAlt: true, leftGui: true, rightGui: true } },
    ]);
  });
  it("batches one event per call by default (Packer's pacing), waits between", () => {
    expect(toUsbBatches(parseBootCommand(["ab<wait5>c"]))).toEqual([
      { keyEvents: [{ usbHidCode: usbHidCode("a"), modifiers: {} }] },
      { keyEvents: [{ usbHidCode: usbHidCode("b"), modifiers: {} }] },
      { waitMs: 5000 },
      { keyEvents: [{ usbHidCode: usbHidCode("c"), modifiers: {} }] },
    ]);
    const batches = toUsbBatches(parseBootCommand(["abcde<wait>f"]), { maxKeyEventsPerBatch: 2 });
    expect(batches.map((b) => ("keyEvents" in b ? b.keyEvents.length : "wait"))).toEqual([2, 2, 1, "wait", 1]);
    expect(() => toUsbBatches([], { maxKeyEventsPerBatch: 0 })).toThrow(RangeError);
  });
  it.each(CANONICAL)("round-trips %s", (text) => {
    for (const max of [1, 10]) {
      expect(eventsToText(usbKeyEventsToEvents(toUsbBatches(parseBootCommand([text]), { maxKeyEventsPerBatch: max })))).toBe(text);
    }
  });
  it("rejects codes that are not (usage << 16) | 7 or unknown usages", () => {
    expect(() => usbKeyEventsToEvents([{ usbHidCode: 0x28, modifiers: {} }])).toThrow(/not \(usage << 16\) \| 7/);
    expect(() => usbKeyEventsToEvents([{ usbHidCode: (0x32 << 16) | 7, modifiers: {} }])).toThrow(/unknown USB HID usage 0x32/);
  });
});

describe("govcKeystrokeArgs", () => {
  it("Ctrl+Alt+Del as documented by govc", () => {
    const ev = toUsbKeyEvents(parseBootCommand(["<leftCtrlOn><leftAltOn><del>"]))[0];
    if (ev === undefined || "waitMs" in ev) throw new Error("expected one key event");
    expect(govcKeystrokeArgs("/DC0/vm/build", ev)).toEqual([
      "vm.keystrokes", "-vm", "/DC0/vm/build", "-c", "0x4c", "-lc=true", "-la=true",
    ]);
  });
  it("from a press event", () => {
    expect(govcKeystrokeArgs("vm1", { kind: "press", key: "enter" })).toEqual(["vm.keystrokes", "-vm", "vm1", "-c", "0x28"]);
    expect(govcKeystrokeArgs("vm1", { kind: "press", key: "a", shift: true })).toEqual(["vm.keystrokes", "-vm", "vm1", "-c", "0x04", "-ls=true"]);
    expect(() => govcKeystrokeArgs("vm1", { kind: "wait", ms: 1 })).toThrow(/whole key presses/);
  });
  it("every modifier flag", () => {
    const all = { leftControl: true, leftShift: true, leftAlt: true, leftGui: true, rightControl: true, rightShift: true, rightAlt: true, rightGui: true };
    expect(govcKeystrokeArgs("v", { usbHidCode: usbHidCode("f12"), modifiers: all }).slice(3)).toEqual([
      "-c", "0x45", "-lc=true", "-ls=true", "-la=true", "-lg=true", "-rc=true", "-rs=true", "-ra=true", "-rg=true",
    ]);
  });
});
