import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import type { KeyEvent } from "../../../src/bootcommand/events.js";
import { parseBootCommand } from "../../../src/bootcommand/parse.js";
import type { KeyName } from "../../../src/bootcommand/keys.js";

const press = (key: KeyName, shift = false): KeyEvent => (shift ? { kind: "press", key, shift: true } : { kind: "press", key });
const down = (key: KeyName): KeyEvent => ({ kind: "down", key });
const up = (key: KeyName): KeyEvent => ({ kind: "up", key });
const wait = (ms: number): KeyEvent => ({ kind: "wait", ms });

function thrown(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error("expected a UserError");
}

describe("special keys (Packer's list)", () => {
  const table: Array<[string, KeyName]> = [
    ["bs", "backspace"], ["del", "delete"], ["enter", "enter"], ["return", "enter"], ["esc", "esc"],
    ["tab", "tab"], ["spacebar", "space"], ["insert", "insert"], ["home", "home"], ["end", "end"],
    ["pageUp", "pageUp"], ["pageDown", "pageDown"], ["up", "up"], ["down", "down"], ["left", "left"],
    ["right", "right"], ["menu", "menu"],
    ["f1", "f1"], ["f2", "f2"], ["f3", "f3"], ["f4", "f4"], ["f5", "f5"], ["f6", "f6"],
    ["f7", "f7"], ["f8", "f8"], ["f9", "f9"], ["f10", "f10"], ["f11", "f11"], ["f12", "f12"],
    ["leftAlt", "leftAlt"], ["rightAlt", "rightAlt"], ["leftCtrl", "leftCtrl"], ["rightCtrl", "rightCtrl"],
    ["leftShift", "leftShift"], ["rightShift", "rightShift"], ["leftSuper", "leftSuper"], ["rightSuper", "rightSuper"],
  ];
  it.each(table)("<%s> presses %s", (token, key) => {
    expect(parseBootCommand([`<${token}>`])).toEqual([press(key)]);
  });
  it.each(table)("<%sOn>/<…Off> hold and release %s", (token, key) => {
    expect(parseBootCommand([`<${token}On>x<${token}Off>`])).toEqual([down(key), press("x"), up(key)]);
  });
  it("is case-insensitive, like Packer", () => {
    expect(parseBootCommand(["<ENTER><Esc><PAGEUP><pagedown><F12><LEFTCTRLON><leftctrloff><WAIT5><Wait250ms>"])).toEqual([
      press("enter"), press("esc"), press("pageUp"), press("pageDown"), press("f12"),
      down("leftCtrl"), up("leftCtrl"), wait(5000), wait(250),
    ]);
  });
  it("Ctrl+Alt+Del via holds", () => {
    expect(parseBootCommand(["<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>"])).toEqual([
      down("leftCtrl"), down("leftAlt"), press("delete"), up("leftAlt"), up("leftCtrl"),
    ]);
  });
  it("char toggles hold a character key (<aOn>, <AOn> holds Shift too)", () => {
    expect(parseBootCommand(["<aOn><aOff><-On><-Off>"])).toEqual([down("a"), up("a"), down("minus"), up("minus")]);
    expect(parseBootCommand(["<AOn><AOff>"])).toEqual([down("leftShift"), down("a"), up("a"), up("leftShift")]);
  });
});

describe("waits", () => {
  it.each([
    ["<wait>", 1000], ["<wait5>", 5000], ["<wait10>", 10_000], ["<wait0>", 0], ["<wait90>", 90_000],
    ["<wait1m30s>", 90_000], ["<wait250ms>", 250], ["<wait1.5s>", 1500], ["<wait2h>", 7_200_000],
    ["<wait1s500ms>", 1500], ["<wait10m>", 600_000], ["<wait5s>", 5000], ["<wait1500us>", 2],
    ["<wait3000000ns>", 3], ["<wait1000µs>", 1],
  ])("%s = %d ms", (token, ms) => {
    expect(parseBootCommand([token])).toEqual([wait(ms)]);
  });
  // Go duration units are case-sensitive (as in time.ParseDuration and Packer's grammar).
  it.each(["<wait 5>", "<wait-5s>", "<wait5x>", "<wait1.5>", "<waits>", "<wait5S>", "<wait1MS>"])("%s is not a wait: typed literally", (token) => {
    expect(parseBootCommand([token]).some((e) => e.kind === "wait")).toBe(false);
    expect(parseBootCommand([token])[0]).toEqual(press("comma", true)); // "<"
  });
});

describe("literal text", () => {
  it("types lower case, digits and unshifted punctuation as plain presses", () => {
    expect(parseBootCommand(["a1-=[]\\;',./` "])).toEqual([
      press("a"), press("1"), press("minus"), press("equal"), press("bracketLeft"), press("bracketRight"),
      press("backslash"), press("semicolon"), press("quote"), press("comma"), press("period"), press("slash"),
      press("backquote"), press("space"),
    ]);
  });
  it("types upper case and shifted symbols as Shift + base key (US layout)", () => {
    const shifted: Array<[string, KeyName]> = [
      ["A", "a"], ["Z", "z"], ["!", "1"], ["@", "2"], ["#", "3"], ["$", "4"], ["%", "5"], ["^", "6"], ["&", "7"],
      ["*", "8"], ["(", "9"], [")", "0"], ["_", "minus"], ["+", "equal"], ["{", "bracketLeft"], ["}", "bracketRight"],
      ["|", "backslash"], [":", "semicolon"], ['"', "quote"], ["~", "backquote"], ["<", "comma"], [">", "period"], ["?", "slash"],
    ];
    for (const [ch, key] of shifted) expect(parseBootCommand([ch]), ch).toEqual([press(key, true)]);
  });
  it("joins the list with nothing in between, like Packer", () => {
    expect(parseBootCommand(["ab", "c", "<ent", "er>"])).toEqual([press("a"), press("b"), press("c"), press("enter")]);
  });
  it("types newline as Enter and tab as Tab (a vmkiln convenience for YAML block scalars)", () => {
    expect(parseBootCommand(["a\nb\r\nc\rd\te"])).toEqual([
      press("a"), press("enter"), press("b"), press("enter"), press("c"), press("enter"), press("d"), press("tab"), press("e"),
    ]);
  });
  it("rejects characters a US keyboard cannot type, naming element and column", () => {
    const e = thrown(() => parseBootCommand(["ok", "caf\u00e9"]));
    expect(e.code).toBe("BOOT_COMMAND_INVALID");
    expect(e.message).toBe('boot_command[1], column 4: cannot type "\u00e9" (U+00E9): only printable US-ASCII, newline and tab can be typed');
    expect(thrown(() => parseBootCommand(["\u0007"])).message).toContain("(U+0007)");
  });
});

describe("unknown <tokens>", () => {
  it("are typed literally by default (Packer's behaviour)", () => {
    expect(parseBootCommand(["<foo>"])).toEqual([
      press("comma", true), press("f"), press("o"), press("o"), press("period", true),
    ]);
    // A "<" that does not start a token is just a character, and a token may follow it.
    expect(parseBootCommand(["<<enter>"])).toEqual([press("comma", true), press("enter")]);
    expect(parseBootCommand(["a < b"])).toEqual([press("a"), press("space"), press("comma", true), press("space"), press("b")]);
    expect(parseBootCommand(["<>"])).toEqual([press("comma", true), press("period", true)]);
  });
  it("are errors in strict mode, naming the token and its position", () => {
    const e = thrown(() => parseBootCommand(["<esc>", "linux <foo> x"], { strict: true }));
    expect(e.code).toBe("BOOT_COMMAND_INVALID");
    expect(e.message).toBe("boot_command[1], column 7: unknown key <foo>");
    expect(e.hint).toMatch(/<enter>/);
    expect(thrown(() => parseBootCommand(["<wait 5>"], { strict: true })).message).toContain("unknown key <wait 5>");
    expect(thrown(() => parseBootCommand(["<ctrlOn>"], { strict: true })).message).toContain("<ctrlOn>");
  });
  it("strict mode still types a < that is not token-like", () => {
    expect(parseBootCommand(["a<b", "<", "<1>", "<enter>"], { strict: true })).toEqual([
      press("a"), press("comma", true), press("b"), press("comma", true),
      press("comma", true), press("1"), press("period", true), press("enter"),
    ]);
  });
});

describe("values", () => {
  const values = { "http.ip": "10.0.2.2", "http.port": 8100, name: "deb12" };
  it("substitutes Packer's {{ .HTTPIP }} spellings, with or without spaces", () => {
    const ev = parseBootCommand(["{{ .HTTPIP }}:{{.HTTPPort}}/{{ .Name}}"], { values });
    const ref = parseBootCommand(["10.0.2.2:8100/deb12"]);
    expect(ev).toEqual(ref);
  });
  it("substitutes ${http.ip} ${http.port} ${http.url} ${name}", () => {
    expect(parseBootCommand(["${http.url}/${name}.cfg ${http.ip} ${http.port}"], { values })).toEqual(
      parseBootCommand(["http://10.0.2.2:8100/deb12.cfg 10.0.2.2 8100"]),
    );
  });
  it("lets $${ type a literal ${", () => {
    expect(parseBootCommand(["$${name}"], { values })).toEqual(parseBootCommand(["$"]).concat(parseBootCommand(["{name}"])));
  });
  it("substitutes before parsing keys, as Packer does", () => {
    expect(parseBootCommand(["${name}"], { values: { name: "x<enter>" } })).toEqual([press("x"), press("enter")]);
  });
  it("errors on an unknown value, naming it", () => {
    const e = thrown(() => parseBootCommand(["ok", "url=${http.host}"], { values }));
    expect(e.code).toBe("BOOT_COMMAND_VALUE");
    expect(e.message).toBe('boot_command[1], column 5: unknown value ${http.host} ("http.host")');
    expect(e.hint).toBe("known values here: http.ip, http.port, http.url, name");
    expect(thrown(() => parseBootCommand(["{{ .SSHPublicKey }}"], { values })).message).toContain("{{ .SSHPublicKey }}");
    expect(thrown(() => parseBootCommand(["{{ .HTTPIP }}"])).hint).toBe("no values are available to this boot command");
    expect(thrown(() => parseBootCommand(["{{ user `x` }}"], { values })).message).toContain("unsupported template expression");
  });
  it("has no http.url without both ip and port", () => {
    expect(() => parseBootCommand(["${http.url}"], { values: { "http.ip": "1.2.3.4" } })).toThrow(/unknown value \$\{http\.url\}/);
    expect(parseBootCommand(["${http.url}"], { values: { "http.url": "http://h/" } })).toEqual(parseBootCommand(["http://h/"]));
  });
});

describe("realistic commands", () => {
  it("Debian 12 preseed (Packer's example form)", () => {
    const cmd = [
      "<esc><wait>",
      "auto <wait>",
      "console-keymaps-at/keymap=us <wait>",
      "console-setup/ask_detect=false <wait>",
      "debconf/frontend=noninteractive <wait>",
      "debian-installer=en_US.UTF-8 <wait>",
      "fb=false <wait>",
      "install <wait>",
      "netcfg/get_hostname={{ .Name }} <wait>",
      "preseed/url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg <wait>",
      "<enter><wait>",
    ];
    const ev = parseBootCommand(cmd, { values: { "http.ip": "10.0.2.2", "http.port": 8100, name: "debian-12" } });
    expect(ev[0]).toEqual(press("esc"));
    expect(ev[1]).toEqual(wait(1000));
    expect(ev.at(-2)).toEqual(press("enter"));
    expect(ev.filter((e) => e.kind === "wait")).toHaveLength(11);
    // Shifted: "_" in ask_detect, en_US, get_hostname; "US", "UTF"; the two ":" in the URL.
    const typed = ev.filter((e): e is Extract<KeyEvent, { kind: "press" }> => e.kind === "press");
    expect(typed.filter((e) => e.shift).map((e) => e.key)).toEqual(["minus", "minus", "u", "s", "u", "t", "f", "minus", "semicolon", "semicolon"]);
    expect(ev.length).toBe(typed.length + 11);
  });
  it("EL kickstart on the isolinux/grub prompt", () => {
    const ev = parseBootCommand(
      ["<up><tab><wait> inst.text inst.ks=${http.url}/ks.cfg<enter><wait10m>"],
      { values: { "http.ip": "10.0.2.2", "http.port": 8080 } },
    );
    expect(ev.slice(0, 4)).toEqual([press("up"), press("tab"), wait(1000), press("space")]);
    expect(ev.slice(-2)).toEqual([press("enter"), wait(600_000)]);
    expect(ev).toEqual(parseBootCommand(["<up><tab><wait> inst.text inst.ks=http://10.0.2.2:8080/ks.cfg<enter><wait10m>"]));
  });
  it("accepts a single string too", () => {
    expect(parseBootCommand("a")).toEqual([press("a")]);
  });
});
