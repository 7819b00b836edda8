// Fuzz target: the boot-command parser (src/bootcommand/) and the three encoders that have decoders
// (QEMU send-key and input-send-event, VirtualBox PS/2 scan codes, vSphere USB HID). Inputs: random
// strings (ASCII, any code point), strings built from the grammar's own pieces, and mutations of the
// corpus in test/unit/bootcommand/corpus.ts. Properties:
//   - parsing returns key events or throws a UserError (our family), never anything else;
//   - it is quick (well under 1 s per case), so nothing loops;
//   - rendering the events as text and parsing that again gives the same events;
//   - each encoder's output decodes, and re-encoding the decoded events sends the guest the same key
//     transitions (PS/2, input-send-event, USB HID) or the same keys in the same chords' order
//     (send-key, whose decoder folds modifiers on purpose); decoded forms are stable.
import fc from "fast-check";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseBootCommand, type ParseOptions } from "../../../src/bootcommand/parse.js";
import { eventsToText } from "../../../src/bootcommand/text.js";
import type { KeyEvent } from "../../../src/bootcommand/events.js";
import { SPECIAL_KEY_SPELLING } from "../../../src/bootcommand/keys.js";
import { inputSendEventsToEvents, sendKeyCallsToEvents, toInputSendEvents, toSendKeyCalls } from "../../../drivers/qemu/qcodes.js";
import { scancodeGroupsToEvents, toScancodeGroups } from "../../../drivers/virtualbox/scancodes.js";
import { toUsbBatches, usbKeyEventsToEvents } from "../../../drivers/vsphere/usb-hid.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { CANONICAL } from "../bootcommand/corpus.js";

const RUNS = 400;
const stats = { cases: 0, parsed: 0, rejected: 0, ms: 0, slowestMs: 0, wallMs: 0 };
afterAll(() => {
  console.info(
    `fuzz bootcommand: ${stats.cases} cases (${stats.parsed} parsed, ${stats.rejected} rejected as UserError) in ${Math.round(stats.wallMs)} ms with the round trips; parsing ${Math.round(stats.ms)} ms, slowest parse ${stats.slowestMs.toFixed(1)} ms`,
  );
});

const KEY_WORDS = Object.values(SPECIAL_KEY_SPELLING).filter((s): s is string => s !== undefined);

/** Pieces of the grammar that parse (keys, holds, waits, values, text), so random input reaches the encoders. */
const cleanPiece = fc.oneof(
  fc.constantFrom(...KEY_WORDS.map((k) => `<${k}>`), ...KEY_WORDS.map((k) => `<${k}On>`), ...KEY_WORDS.map((k) => `<${k}Off>`)),
  fc.constantFrom("<wait>", "<wait5>", "<wait1m30s>", "<wait250ms>", "<wait.5s>", "<wait1.5h>", "<wait0>", "<waitµs>", "<wait1μs>"),
  fc.constantFrom("<aOn>", "<AOff>", "<:On>", "<>", "<<", ">>", "< >", "<enter", "enter>", "<return>", "<ENTER>", "<leftctrlon>", "<wait5x>", "<hostname>"),
  fc.constantFrom("{{ .HTTPIP }}", "{{.HTTPPort}}", "{{ .Name }}", "{{", "}}", "${http.ip}", "${http.url}", "$${", "${", "}"),
  fc.constantFrom("\n", "\r\n", "\r", "\t", " ", "-", "=", "/", ":", "$", "{", "}", "<", ">"),
  fc.string({ maxLength: 8 }),
  fc.integer({ min: 0, max: 99999 }).map(String),
);
/** Near misses the parser must reject with a UserError. */
const dirtyPiece = fc.constantFrom("\u0000", "\u007f", "é", "😀", "\u200b", "<éOn>", "<wait999999999h>", "{{ .Nope }}", "{{ }}", "${nope}");

const grammarText = fc.array(cleanPiece, { maxLength: 24 }).map((parts) => parts.join(""));
const dirtyText = fc.array(fc.oneof({ weight: 4, arbitrary: cleanPiece }, { weight: 1, arbitrary: dirtyPiece }), { maxLength: 24 }).map((parts) => parts.join(""));

/** A corpus command with a few edits: a character inserted, a range deleted, a token's letter changed. */
const corpusMutation = fc
  .tuple(fc.constantFrom(...CANONICAL), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.string({ unit: "binary-ascii", maxLength: 3 })), { maxLength: 4 }))
  .map(([text, edits]) => {
    let t = text;
    for (const [at, del, ins] of edits) {
      const i = t.length === 0 ? 0 : at % (t.length + 1);
      t = t.slice(0, i) + ins + t.slice(i + del);
    }
    return t;
  });

const input = fc.oneof(
  { weight: 4, arbitrary: grammarText },
  { weight: 1, arbitrary: dirtyText },
  { weight: 2, arbitrary: corpusMutation },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
);

/** The command as a list (Packer joins the elements) and random parse options. */
const VALUES = { "http.ip": "10.0.2.2", "http.port": "8080", name: "vm" };
const command = fc.tuple(
  fc.array(input, { minLength: 1, maxLength: 4 }),
  fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }), // strict
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(VALUES) },
    { weight: 1, arbitrary: fc.option(fc.dictionary(fc.constantFrom("http.ip", "http.port", "name", "http.url", "x"), fc.string({ maxLength: 12 })), { nil: undefined }) },
  ),
);

const lastKey = (c: ReturnType<typeof toSendKeyCalls>[number]) => ("waitMs" in c ? c : c.keys.at(-1)?.data);
const flat = (calls: ReturnType<typeof toInputSendEvents>) => calls.flatMap((c): unknown[] => ("waitMs" in c ? [c] : c.events));

function parse(list: string[], opts: ParseOptions): { events?: KeyEvent[]; error?: unknown } {
  try {
    return { events: parseBootCommand(list, opts) };
  } catch (error) {
    return { error };
  }
}

describe("boot-command parser (fuzz)", () => {
  it(
    "returns events or throws a UserError; text round-trips; encoders round-trip",
    () => {
      const started = performance.now();
      onTestFinished(() => void (stats.wallMs += performance.now() - started));
      fc.assert(
        fc.property(command, ([list, strict, values]) => {
          const started = performance.now();
          const unknown: unknown[] = [];
          const r = parse(list, { strict, ...(values ? { values } : {}), onUnknownToken: (u) => unknown.push(u) });
          const ms = performance.now() - started;
          stats.cases++;
          stats.ms += ms;
          stats.slowestMs = Math.max(stats.slowestMs, ms);
          expect(ms).toBeLessThan(1000);
          if (r.error !== undefined) {
            stats.rejected++;
            expect(r.error).toBeInstanceOf(UserError);
            expect((r.error as UserError).message).toMatch(/^boot_command\[\d+\], column \d+: /);
            return;
          }
          stats.parsed++;
          const events = r.events!;
          // Text round trip. A value may type "{{ … }}", which has no escape (see text.ts).
          const text = eventsToText(events);
          if (!text.includes("{{")) expect(parseBootCommand([text]), text).toEqual(events);
          // Encoders: decodable, and decode∘encode changes nothing the guest would receive.
          // send-key chords decode lossily on purpose (a held Shift folds into the press and re-encodes
          // after the other modifiers; two Shifts in one chord become one): the same keys in the same
          // order, and once decoded the form is stable.
          const sendKey = toSendKeyCalls(events);
          const decoded = sendKeyCallsToEvents(sendKey);
          const again = toSendKeyCalls(decoded);
          expect(again.map(lastKey)).toEqual(sendKey.map(lastKey));
          expect(sendKeyCallsToEvents(again)).toEqual(decoded);
          // input-send-event groups one key event's transitions per call; decoding folds a bare
          // down+up into a press, so compare the transitions the guest gets, not the grouping.
          const qmp = toInputSendEvents(events);
          expect(flat(toInputSendEvents(inputSendEventsToEvents(qmp)))).toEqual(flat(qmp));
          const ps2 = toScancodeGroups(events);
          expect(toScancodeGroups(scancodeGroupsToEvents(ps2))).toEqual(ps2);
          const usb = toUsbBatches(events);
          expect(toUsbBatches(usbKeyEventsToEvents(usb))).toEqual(usb);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 10),
  );
});
