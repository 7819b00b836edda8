import { describe, expect, it } from "vitest";
import { formatDuration, parseGoDuration } from "../../../src/bootcommand/duration.js";
import { withKeyInterval, type KeyEvent } from "../../../src/bootcommand/events.js";
import { KEY_NAMES } from "../../../src/bootcommand/keys.js";
import { parseBootCommand } from "../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../src/bootcommand/text.js";
import { fromTransitions, toTransitions } from "../../../src/bootcommand/transitions.js";
import { CANONICAL } from "./corpus.js";

describe("eventsToText", () => {
  it.each(CANONICAL)("round-trips %s", (text) => {
    expect(eventsToText(parseBootCommand([text]))).toBe(text);
  });
  it("renders Packer aliases and bare waits canonically", () => {
    expect(eventsToText(parseBootCommand(["<return><spacebar><WAIT><wait5><Enter><BS><LEFTCTRLON>"]))).toBe(
      "<enter> <wait1s><wait5s><enter><bs><leftCtrlOn>",
    );
    expect(eventsToText(parseBootCommand(["a\nb\tc"]))).toBe("a<enter>b<tab>c");
  });
  it("renders holds of character keys as Packer char toggles", () => {
    const ev: KeyEvent[] = [{ kind: "down", key: "a" }, { kind: "up", key: "minus" }, { kind: "down", key: "space" }];
    expect(eventsToText(ev)).toBe("<aOn><-Off><spacebarOn>");
    expect(parseBootCommand([eventsToText(ev)])).toEqual(ev);
  });
  it("renders a Shift press of a key with no shifted character as a hold", () => {
    expect(eventsToText([{ kind: "press", key: "enter", shift: true }])).toBe("<leftShiftOn><enter><leftShiftOff>");
  });
  it("has a spelling for every key that parses back to it", () => {
    for (const key of KEY_NAMES) {
      for (const ev of [{ kind: "press", key }, { kind: "down", key }, { kind: "up", key }] as KeyEvent[]) {
        expect(parseBootCommand([eventsToText([ev])]), `${ev.kind} ${key}`).toEqual([ev]);
      }
    }
  });
});

describe("durations", () => {
  it.each([
    ["0", 0], ["0s", 0], ["1s", 1000], ["1.5s", 1500], [".5s", 500], ["1m30s", 90_000], ["1h", 3_600_000],
    ["250ms", 250], ["1500us", 2], ["1000µs", 1], ["1000μs", 1], ["5000000ns", 5],
  ])("parseGoDuration(%s) = %d", (s, ms) => expect(parseGoDuration(s)).toBe(ms));
  it.each(["", "5", "1x", "s", "-1s", "1 s", "1S"])("parseGoDuration(%j) is not a duration", (s) => {
    expect(parseGoDuration(s)).toBeUndefined();
  });
  it.each([
    [0, "0s"], [1, "1ms"], [1000, "1s"], [1500, "1s500ms"], [90_000, "1m30s"], [3_600_000, "1h"], [3_661_001, "1h1m1s1ms"],
  ])("formatDuration(%d) = %s", (ms, s) => {
    expect(formatDuration(ms)).toBe(s);
    expect(parseGoDuration(s)).toBe(ms);
  });
});

describe("transitions", () => {
  it("expand a shifted press into Shift down, key down, key up, Shift up", () => {
    expect(toTransitions(parseBootCommand(["A"]))).toEqual([
      { kind: "down", key: "leftShift" }, { kind: "down", key: "a" }, { kind: "up", key: "a" }, { kind: "up", key: "leftShift" },
    ]);
  });
  it("do not press Shift again while the user holds one", () => {
    expect(toTransitions(parseBootCommand(["<rightShiftOn>A<rightShiftOff>"]))).toEqual([
      { kind: "down", key: "rightShift" }, { kind: "down", key: "a" }, { kind: "up", key: "a" }, { kind: "up", key: "rightShift" },
    ]);
  });
  it.each(CANONICAL)("fold back into the canonical events: %s", (text) => {
    const ev = parseBootCommand([text]);
    expect(fromTransitions(toTransitions(ev))).toEqual(ev);
  });
  it("normalise a Shift hold around one character into a shifted press (documented loss)", () => {
    expect(eventsToText(fromTransitions(toTransitions(parseBootCommand(["<leftShiftOn>a<leftShiftOff>"]))))).toBe("A");
  });
});

describe("withKeyInterval", () => {
  it("puts a wait between consecutive key events only", () => {
    const ev = parseBootCommand(["ab<wait>c<leftCtrlOn>"]);
    expect(eventsToText(withKeyInterval(ev, 100))).toBe("a<wait100ms>b<wait1s>c<wait100ms><leftCtrlOn>");
    expect(withKeyInterval(ev, 0)).toEqual(ev);
  });
});

// Regression (found by fuzzing, issue 12): a typed "${" (written "$${") rendered as "${", which
// parses back as a value reference ("unknown value ${…}").
describe("eventsToText escapes a typed ${", () => {
  it.each(["$${x}", "a$${{ .Name }}", "$$$${y}", "$$", "${{"])("%s round-trips", (command) => {
    const events = parseBootCommand([command], { values: {} });
    const text = eventsToText(events);
    expect(parseBootCommand([text], { values: {} })).toEqual(events);
  });
});
