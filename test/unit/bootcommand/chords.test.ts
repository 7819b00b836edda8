// Regression (found by fuzzing, issue 12): decoding a chord with both Shifts folded Left Shift into
// the press (`<rightShiftOn>A`), which the encoders send as [shift_r, a], which decoded as
// `<rightShiftOn>a`: decoding the same keys gave two different commands.
import { describe, expect, it } from "vitest";
import { chordsToEvents } from "../../../src/bootcommand/chords.js";
import { parseBootCommand } from "../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../src/bootcommand/text.js";
import { sendKeyCallsToEvents, toSendKeyCalls } from "../../../drivers/qemu/qcodes.js";

describe("chordsToEvents with both Shifts", () => {
  it("keeps Left Shift a held key when Right Shift is down too", () => {
    expect(eventsToText(chordsToEvents([{ mods: ["rightShift", "leftShift"], key: "a" }]))).toBe("<rightShiftOn><leftShiftOn>a<leftShiftOff><rightShiftOff>");
    expect(eventsToText(chordsToEvents([{ mods: ["leftShift"], key: "a" }]))).toBe("A");
  });

  it.each(["<rightShiftOn><leftShiftOn>a", "<rightShiftOn><:On>", "<leftShiftOn><rightShiftOn>a", "<rightShiftOn>a<leftShiftOn>b", "<rightShiftOn>A"])(
    "send-key: %s decodes to a form that decodes to itself",
    (command) => {
      const once = sendKeyCallsToEvents(toSendKeyCalls(parseBootCommand([command])));
      expect(sendKeyCallsToEvents(toSendKeyCalls(once))).toEqual(once);
    },
  );
});
