import { describe, expect, it } from "vitest";
import { KEY_NAMES, type KeyName } from "../../../../src/bootcommand/keys.js";
import { parseBootCommand } from "../../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../../src/bootcommand/text.js";
import {
  scancodeGroupsToEvents,
  scancodesToEvents,
  toScancodeGroups,
  type ScancodeGroup,
} from "../../../../drivers/virtualbox/scancodes.js";
import { CANONICAL } from "../../bootcommand/corpus.js";

// PC/XT scan code set 1 make codes, as published (IBM PC/AT technical reference; Microsoft's
// Keyboard Scan Code Specification, "Scan Code Set 1"), written out independently.
const PUBLISHED: Array<[KeyName, string]> = [
  ["esc", "01"], ["1", "02"], ["2", "03"], ["3", "04"], ["4", "05"], ["5", "06"], ["6", "07"], ["7", "08"],
  ["8", "09"], ["9", "0a"], ["0", "0b"], ["minus", "0c"], ["equal", "0d"], ["backspace", "0e"], ["tab", "0f"],
  ["q", "10"], ["w", "11"], ["e", "12"], ["r", "13"], ["t", "14"], ["y", "15"], ["u", "16"], ["i", "17"],
  ["o", "18"], ["p", "19"], ["bracketLeft", "1a"], ["bracketRight", "1b"], ["enter", "1c"], ["leftCtrl", "1d"],
  ["a", "1e"], ["s", "1f"], ["d", "20"], ["f", "21"], ["g", "22"], ["h", "23"], ["j", "24"], ["k", "25"],
  ["l", "26"], ["semicolon", "27"], ["quote", "28"], ["backquote", "29"], ["leftShift", "2a"], ["backslash", "2b"],
  ["z", "2c"], ["x", "2d"], ["c", "2e"], ["v", "2f"], ["b", "30"], ["n", "31"], ["m", "32"], ["comma", "33"],
  ["period", "34"], ["slash", "35"], ["rightShift", "36"], ["leftAlt", "38"], ["space", "39"],
  ["f1", "3b"], ["f2", "3c"], ["f3", "3d"], ["f4", "3e"], ["f5", "3f"], ["f6", "40"], ["f7", "41"], ["f8", "42"],
  ["f9", "43"], ["f10", "44"], ["f11", "57"], ["f12", "58"],
  ["rightCtrl", "e0 1d"], ["rightAlt", "e0 38"], ["home", "e0 47"], ["up", "e0 48"], ["pageUp", "e0 49"],
  ["left", "e0 4b"], ["right", "e0 4d"], ["end", "e0 4f"], ["down", "e0 50"], ["pageDown", "e0 51"],
  ["insert", "e0 52"], ["delete", "e0 53"], ["leftSuper", "e0 5b"], ["rightSuper", "e0 5c"], ["menu", "e0 5d"],
];

const codesOf = (groups: ScancodeGroup[]): string[] => groups.flatMap((g) => ("codes" in g ? g.codes : []));

describe("scan code set 1 table", () => {
  it("covers every key exactly once", () => {
    expect(PUBLISHED.map(([k]) => k).sort()).toEqual([...KEY_NAMES].sort());
  });
  it.each(PUBLISHED)("%s: make %s, break = make | 0x80 (e0 on both)", (key, make) => {
    const m = make.split(" ");
    const last = m.at(-1)!;
    const brk = [...m.slice(0, -1), (parseInt(last, 16) | 0x80).toString(16)];
    expect(toScancodeGroups([{ kind: "press", key }])).toEqual([{ codes: [...m, ...brk] }]);
    expect(toScancodeGroups([{ kind: "down", key }])).toEqual([{ codes: m }]);
    expect(toScancodeGroups([{ kind: "up", key }])).toEqual([{ codes: brk }]);
    expect(scancodesToEvents([...m, ...brk])).toEqual([{ kind: "press", key }]);
  });
});

describe("encoding", () => {
  it("wraps shifted characters in LeftShift make/break", () => {
    expect(codesOf(toScancodeGroups(parseBootCommand(["A:"])))).toEqual(["2a", "1e", "9e", "aa", "2a", "27", "a7", "aa"]);
  });
  it("Ctrl+Alt+Del with holds", () => {
    expect(codesOf(toScancodeGroups(parseBootCommand(["<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>"])))).toEqual([
      "1d", "38", "e0", "53", "e0", "d3", "b8", "9d",
    ]);
  });
  it("splits into groups of at most 25 codes (Packer's size), waits between", () => {
    const groups = toScancodeGroups(parseBootCommand(["abcdefghijklm<wait>n"]));
    expect(groups.map((g) => ("codes" in g ? g.codes.length : `wait ${g.waitMs}`))).toEqual([25, 1, "wait 1000", 2]); // 13 presses = 26 codes
    expect(groups.every((g) => !("codes" in g) || g.codes.length <= 25)).toBe(true);
  });
  it("never splits an e0 pair across groups", () => {
    // a (1e 9e) then <up> (e0 48 e0 c8) with a group size of 3: e0 48 moves whole to the next group.
    expect(toScancodeGroups(parseBootCommand(["a<up>"]), { maxCodesPerGroup: 3 })).toEqual([
      { codes: ["1e", "9e"] },
      { codes: ["e0", "48"] },
      { codes: ["e0", "c8"] },
    ]);
    for (const size of [2, 3, 5, 7, 25]) {
      const groups = toScancodeGroups(parseBootCommand(["<up><down>x<home><end>Y<rightCtrlOn><del><rightCtrlOff>"]), { maxCodesPerGroup: size });
      for (const g of groups) {
        if (!("codes" in g)) continue;
        expect(g.codes.length).toBeLessThanOrEqual(size);
        expect(g.codes.at(-1)).not.toBe("e0");
      }
    }
    expect(() => toScancodeGroups([], { maxCodesPerGroup: 1 })).toThrow(/at least 2/);
  });
  it.each(CANONICAL)("round-trips %s", (text) => {
    for (const size of [2, 25]) {
      const groups = toScancodeGroups(parseBootCommand([text]), { maxCodesPerGroup: size });
      expect(eventsToText(scancodeGroupsToEvents(groups))).toBe(text);
    }
  });
});

describe("decoding", () => {
  it("accepts upper-case hex", () => {
    expect(scancodesToEvents(["E0", "48", "E0", "C8"])).toEqual([{ kind: "press", key: "up" }]);
  });
  it("rejects unknown or malformed codes", () => {
    expect(() => scancodesToEvents(["e0", "1c"])).toThrow(/unknown scan code e0 1c/); // keypad Enter: not modelled
    expect(() => scancodesToEvents(["4c"])).toThrow(/unknown scan code 4c/);
    expect(() => scancodesToEvents(["e0"])).toThrow(/no code after it/);
    expect(() => scancodesToEvents(["1"])).toThrow(/two-digit hex/);
  });
  it("keeps unmatched make/break as holds", () => {
    expect(eventsToText(scancodesToEvents(["1d", "2e", "ae"]))).toBe("<leftCtrlOn>c");
  });
});
