// goss's matchers against the examples in goss's own documentation (goss-org/goss docs/gossfile.md,
// section "Matchers"; the file names the subsection of each case). The test data is written here,
// in goss's YAML, and read with the same YAML parser vmkiln reads gossfiles with.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { compileFor, compileMatcher, GossSyntaxError, Reader } from "../../../src/goss/matchers.js";

const m = (yaml: string) => compileMatcher(parse(yaml), "t");
const run = (yaml: string, actual: unknown) => m(yaml).match(actual);

describe("default matchers (docs: Default Matchers)", () => {
  it("strings, integers and bools compare by equality; a number turns the system's string numeric", () => {
    expect(run("'foo'", "foo")).toBe(true);
    expect(run("'foo'", "bar")).toBe(false);
    expect(run("65534", 65534)).toBe(true);
    expect(run("true", true)).toBe(true);
    expect(run("true", "true")).toBe(false); // a bool is matched by equality, not as text
    // docs "Transforms": kernel-param values are strings; value: "128" and value: {gt: 200}
    expect(run('"128"', "128")).toBe(true);
    expect(run("{gt: 200}", "128")).toBe(false);
    expect(run("{lt: 200}", "128")).toBe(true);
  });

  it("an array is contain-elements: the expected list must be a subset (docs basic_array / basic_array_failing)", () => {
    const content = ["group1", "group2", "group3"];
    expect(run("['group1', 'group2']", content)).toBe(true);
    // "This fails, since … the 2nd group2 is not in the returned content"
    const failing = m("['group1', 'group2', 'group2']");
    expect(failing.match(content)).toBe(false);
    expect(failing.failure(content)).toMatchObject({ message: "to contain elements matching", missingElements: [{ equal: "group2" }] });
  });
});

describe("io.Reader patterns (docs: io.Readers)", () => {
  const text = new Reader("this is foo\nGoss rocks\n!bang line\n");
  const pats = (list: unknown[]) => compileFor(list, true, "t");
  it('"foo" finds a line containing foo; "!foo" requires that none does', () => {
    expect(pats(["foo"]).match(text)).toBe(true);
    expect(pats(["!foo"]).match(text)).toBe(false);
    expect(pats(["!bar"]).match(text)).toBe(true);
  });
  it('"\\\\!foo" is an escape: a line containing "!bang"', () => {
    expect(pats(["\\!bang"]).match(text)).toBe(true);
  });
  it('"/[Rr]egex/" matches a line; "!/[Rr]egex/" requires no line to', () => {
    expect(pats(["/[Gg]oss/"]).match(text)).toBe(true);
    expect(pats(["!/[Gg]oss/"]).match(text)).toBe(false);
    expect(pats(["/^this is \\w+$/"]).match(text)).toBe(true);
  });
  it("reports the missing patterns (have_patterns.go FailureResult)", () => {
    const p = pats(["foo", "nope", "!Goss"]);
    expect(p.match(text)).toBe(false);
    expect(p.failure(text)).toMatchObject({ message: "to have patterns", missingElements: ["nope", "!Goss"], foundElements: ["foo"] });
  });
  it("the docs' contents example and its matcher form agree", () => {
    // contents: ["foo", "!bar", "/[Gg]oss/"]  ==  and: [contain-element foo, not contain-element bar, contain-element {match-regexp}]
    const lines = "foo\nGoss\n";
    expect(pats(["foo", "!bar", "/[Gg]oss/"]).match(new Reader(lines))).toBe(true);
    const long = compileFor(parse(`
and:
  - contain-element: "foo"
  - not: {contain-element: "bar"}
  - contain-element: {match-regexp: "[Gg]oss"}
`), true, "t");
    expect(long.match(new Reader(lines))).toBe(true);
    expect(long.match(new Reader("foo\nbar\nGoss"))).toBe(false);
  });
  it("a string (not a list) compares the whole output: stdout: \"\" asserts it is empty (docs command warning)", () => {
    expect(compileFor("", true, "t").match(new Reader(""))).toBe(true);
    expect(compileFor("", true, "t").match(new Reader("x\n"))).toBe(false);
  });
});

describe("advanced matchers (docs: Advanced Matchers)", () => {
  it("string matchers on 42 (docs String Matchers example)", () => {
    expect(run(`
and:
  - '42'
  - have-prefix: '4'
  - have-suffix: '2'
  - match-regexp: '\\d{2}'
  - contain-substring: '2'
`, 42)).toBe(true);
    expect(run("{have-prefix: '5'}", 42)).toBe(false);
  });
  it('numeric matchers on "42" (docs Numeric matchers example)', () => {
    expect(run("and: [42, 42.0, {gt: 40}, {lt: 45}]", "42")).toBe(true);
    expect(run("{ge: 43}", "42")).toBe(false);
    expect(run("{le: 42}", "42")).toBe(true);
  });
  it("array matchers on [foo, bar, moo] (docs Array matchers example)", () => {
    expect(run(`
and:
  - contain-elements: [foo, bar]
  - [foo, bar]
  - equal: [foo, bar, moo]
  - consist-of: [foo, have-prefix: m, bar]
  - contain-element:
      have-prefix: b
`, ["foo", "bar", "moo"])).toBe(true);
    expect(run("{equal: [bar, foo, moo]}", ["foo", "bar", "moo"])).toBe(false); // order matters
    expect(run("{consist-of: [foo, bar]}", ["foo", "bar", "moo"])).toBe(false); // moo left over
  });
  it("a string is an array of its lines for array matchers (docs: Strings are split on \\n)", () => {
    expect(run("{contain-element: b}", "a\nb\nc")).toBe(true);
  });
  it("misc: have-len, have-key, not, or (docs Misc matchers; matching has_foo_bar_and_baz)", () => {
    expect(run("{have-len: 3}", ["a", "b", "c"])).toBe(true);
    expect(run("{have-len: 3}", "abcd")).toBe(false);
    expect(run("and: [{have-key: baz}]", { foo: "bar", baz: "bing" })).toBe(true);
    expect(run("{not: FAIL}", "PASS")).toBe(true);
    expect(run("{not: FAIL}", "FAIL")).toBe(false);
    expect(run("{or: [a, b]}", "b")).toBe(true);
    expect(run("{or: [a, b]}", "c")).toBe(false);
  });
  it("failure results carry goss's words and the transform (docs Transforms: 128 to be > 200, to-numeric)", () => {
    const g = m("{gt: 200}");
    expect(g.match("128")).toBe(false);
    expect(g.failure("128")).toEqual({ actual: 128, message: "to be numerically >", expected: 200, transformChain: ["to-numeric"], untransformedValue: "128" });
    const e = m("'0644'");
    e.match("0600");
    expect(e.failure("0600")).toMatchObject({ message: "to equal", expected: "0644", actual: "0600" });
  });
  it("a value that cannot be made numeric is an error, not a pass", () => {
    expect(() => run("{gt: 1}", "abc")).toThrow(/ParseFloat/);
  });
});

describe("matcher syntax errors (resource/gomega.go matcherToGomegaMatcher)", () => {
  it("names the matcher and where it is", () => {
    expect(() => compileMatcher(parse("{have-prefix: 1}"), "f.yaml: file./x.mode")).toThrow(GossSyntaxError);
    expect(() => compileMatcher(parse("{have-prefix: 1}"), "f.yaml: file./x.mode")).toThrow(/f\.yaml: file\.\/x\.mode\.have-prefix: expected a string value/);
    expect(() => compileMatcher(parse("{gt: 1, lt: 2}"), "w")).toThrow(/only one matcher is allowed/);
    expect(() => compileMatcher(parse("{contain: x}"), "w")).toThrow(/w\.contain: unknown matcher "contain"/);
    expect(() => compileMatcher(parse("{semver-constraint: '>1.0'}"), "w")).toThrow(/semver-constraint matcher .* is not supported by vmkiln/);
    expect(() => compileMatcher(null, "w")).toThrow(/Missing required attribute/);
    expect(() => compileMatcher(parse("{match-regexp: '('}"), "w")).toThrow(/invalid regular expression/);
  });
});
