// Fuzz target: the host's reader of cloud-init's default user (src/provision/default-user.ts), fed
// what a guest prints: dumps of random drop-ins (names, YAML fragments, garbage lines) and raw
// garbage. It never throws, and what it returns is undefined, "" or a name safe for the cleaning
// script's grep and sed patterns. A dump whose only name is in cloud.cfg gives that name.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultUserFromDump } from "../../../src/provision/default-user.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const BASE = "/etc/cloud/cloud.cfg";
const fragment = fc.oneof(
  fc.constantFrom(
    "system_info:", "  default_user:", "    name: ops", "    name: 'a b'", "system_info: null", "system_info: {default_user: {name: x}}",
    "merge_how: dict(replace)", "conf_d: /x", "- a", "---", "a: &x [*x]", "name: !!binary aGk=", "  default_user: [1]", "\t", "{", "'",
  ),
  fc.string({ maxLength: 30 }),
);
const dropIn = fc.record({ name: fc.oneof(fc.constantFrom("50.cfg", "99-z.cfg", "*.cfg", "a:b.cfg", "x.txt"), fc.string({ maxLength: 8 }).map((s) => `${s}.cfg`)), lines: fc.array(fragment, { maxLength: 6 }) });

function render(base: string[], drops: { name: string; lines: string[] }[]): string {
  const files = [BASE, ...drops.map((d) => `${BASE}.d/${d.name}`)];
  const lines = [...base.map((l) => `${BASE}:${l}`), ...drops.flatMap((d) => d.lines.map((l) => `${BASE}.d/${d.name}:${l}`))];
  return ["vmkiln-files", ...files, "vmkiln-lines", ...lines, "vmkiln-grep-exit 0", ""].join("\n");
}

describe("defaultUserFromDump (fuzz)", () => {
  it("never throws; returns undefined, \"\" or a safe name", () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 6 }), fc.array(dropIn, { maxLength: 4 }), fc.string({ maxLength: 200 }), (base, drops, junk) => {
        for (const out of [render(base, drops), junk, `vmkiln-files\n${junk}`, render(base, drops) + junk]) {
          const r = defaultUserFromDump(out);
          expect(r === undefined || r === "" || /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(r)).toBe(true);
        }
      }),
      fuzzParams(300),
    );
  }, fuzzTimeoutMs(300));

  it("a name set only in cloud.cfg is found whatever drop-ins without system_info say", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/), fc.array(fc.record({ name: fc.stringMatching(/^[0-9a-z_-]{1,8}$/).map((s) => `${s}.cfg`), key: fc.stringMatching(/^[a-z]{1,6}$/), value: fc.integer() }), { maxLength: 4 }), (name, drops) => {
        const out = render(["system_info:", "  default_user:", `    name: ${name}`], drops.map((d) => ({ name: d.name, lines: [`${d.key === "system_info" ? "other" : d.key}: ${d.value}`] })));
        expect(defaultUserFromDump(out)).toBe(/^(y|yes|n|no|on|off|true|false|null)$/i.test(name) ? undefined : name);
      }),
      fuzzParams(200),
    );
  }, fuzzTimeoutMs(200));
});
