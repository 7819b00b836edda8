import { describe, expect, it } from "vitest";
import { KEY_NAMES, type KeyName } from "../../../../src/bootcommand/keys.js";
import { parseBootCommand } from "../../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../../src/bootcommand/text.js";
import {
  inputSendEventsToEvents,
  QCODES,
  sendKeyCallsToEvents,
  toInputSendEvents,
  toSendKeyCalls,
} from "../../../../drivers/qemu/qcodes.js";
import { CANONICAL } from "../../bootcommand/corpus.js";

// QEMU's QKeyCode enum (qapi/ui.json), written out independently of the encoder's table.
const PUBLISHED: Array<[KeyName, string]> = [
  ..."abcdefghijklmnopqrstuvwxyz0123456789".split("").map((c) => [c as KeyName, c] as [KeyName, string]),
  ["minus", "minus"], ["equal", "equal"], ["bracketLeft", "bracket_left"], ["bracketRight", "bracket_right"],
  ["backslash", "backslash"], ["semicolon", "semicolon"], ["quote", "apostrophe"], ["backquote", "grave_accent"],
  ["comma", "comma"], ["period", "dot"], ["slash", "slash"], ["space", "spc"],
  ["enter", "ret"], ["esc", "esc"], ["tab", "tab"], ["backspace", "backspace"], ["delete", "delete"],
  ["insert", "insert"], ["home", "home"], ["end", "end"], ["pageUp", "pgup"], ["pageDown", "pgdn"],
  ["up", "up"], ["down", "down"], ["left", "left"], ["right", "right"], ["menu", "compose"],
  ...Array.from({ length: 12 }, (_, i) => [`f${i + 1}` as KeyName, `f${i + 1}`] as [KeyName, string]),
  ["leftShift", "shift"], ["rightShift", "shift_r"], ["leftCtrl", "ctrl"], ["rightCtrl", "ctrl_r"],
  ["leftAlt", "alt"], ["rightAlt", "alt_r"], ["leftSuper", "meta_l"], ["rightSuper", "meta_r"],
];

const q = (data: string) => ({ type: "qcode" as const, data });

describe("qcode table", () => {
  it("covers every key exactly once", () => {
    expect(PUBLISHED.map(([k]) => k).sort()).toEqual([...KEY_NAMES].sort());
    expect(new Set(Object.values(QCODES)).size).toBe(KEY_NAMES.length);
  });
  it.each(PUBLISHED)("%s → %s", (key, qcode) => {
    expect(QCODES[key]).toBe(qcode);
    expect(toSendKeyCalls([{ kind: "press", key }])).toEqual([{ keys: [q(qcode)] }]);
  });
});

describe("send-key", () => {
  it("types a shifted character as one chord [shift, key]", () => {
    expect(toSendKeyCalls(parseBootCommand(["aA:"]))).toEqual([
      { keys: [q("a")] },
      { keys: [q("shift"), q("a")] },
      { keys: [q("shift"), q("semicolon")] },
    ]);
  });
  it("adds held modifiers to every chord until Off (send-key cannot hold a key)", () => {
    expect(toSendKeyCalls(parseBootCommand(["<leftCtrlOn><leftAltOn><del><leftAltOff>x<leftCtrlOff>y"]))).toEqual([
      { keys: [q("ctrl"), q("alt"), q("delete")] },
      { keys: [q("ctrl"), q("x")] },
      { keys: [q("y")] },
    ]);
  });
  it("does not add a second Shift while one is held", () => {
    expect(toSendKeyCalls(parseBootCommand(["<rightShiftOn>A<rightShiftOff>"]))).toEqual([{ keys: [q("shift_r"), q("a")] }]);
  });
  it("types a held non-modifier once and drops its Off", () => {
    expect(toSendKeyCalls(parseBootCommand(["<aOn><aOff>"]))).toEqual([{ keys: [q("a")] }]);
  });
  it("passes waits through and sets hold-time when asked", () => {
    expect(toSendKeyCalls(parseBootCommand(["a<wait250ms>b"]), { holdTimeMs: 50 })).toEqual([
      { keys: [q("a")], holdTimeMs: 50 },
      { waitMs: 250 },
      { keys: [q("b")], holdTimeMs: 50 },
    ]);
  });
  it.each(CANONICAL)("round-trips %s", (text) => {
    expect(eventsToText(sendKeyCallsToEvents(toSendKeyCalls(parseBootCommand([text]))))).toBe(text);
  });
  it("rejects an unknown qcode when decoding", () => {
    expect(() => sendKeyCallsToEvents([{ keys: [q("kp_9")] }])).toThrow(/unknown qcode "kp_9"/);
  });
});

describe("input-send-event", () => {
  const ev = (down: boolean, data: string) => ({ type: "key" as const, data: { down, key: q(data) } });
  it("sends exact down/up events, one call per boot-command event", () => {
    expect(toInputSendEvents(parseBootCommand(["A<leftCtrlOn>c<wait1s><leftCtrlOff>"]))).toEqual([
      { events: [ev(true, "shift"), ev(true, "a"), ev(false, "a"), ev(false, "shift")] },
      { events: [ev(true, "ctrl")] },
      { events: [ev(true, "c"), ev(false, "c")] },
      { waitMs: 1000 },
      { events: [ev(false, "ctrl")] },
    ]);
  });
  it("keeps a held non-modifier held", () => {
    expect(toInputSendEvents(parseBootCommand(["<aOn><aOff>"]))).toEqual([{ events: [ev(true, "a")] }, { events: [ev(false, "a")] }]);
  });
  it.each(CANONICAL)("round-trips %s", (text) => {
    expect(eventsToText(inputSendEventsToEvents(toInputSendEvents(parseBootCommand([text]))))).toBe(text);
  });
});
