import { describe, expect, it } from "vitest";
import { interpolateString } from "../../../src/template/interpolate.js";

const scope = { vars: { a: "1", empty: "" }, env: { HOME: "/h", BLANK: "" }, name: "node" };

describe("interpolateString", () => {
  it.each([
    ["plain", "plain"],
    ["${var.a}-${var.a}", "1-1"],
    ["${ var.a }", "1"],
    ["${env.HOME}/x", "/h/x"],
    ["${env.NOPE:-d}", "d"],
    ["${env.BLANK:-d}", "d"],
    ["${env.HOME:-d}", "/h"],
    ["${env.NOPE:-}", ""],
    ["${var.nope:-dv}", "dv"],
    ["${var.empty}", ""],
    ["${name}.qcow2", "node.qcow2"],
    ["$${var.a}", "${var.a}"],
    ["cost $5 and $", "cost $5 and $"],
  ])("%j → %j", (input, out) => {
    expect(interpolateString(input, scope)).toEqual({ value: out, errors: [] });
  });

  it("collects every error in a string and leaves the reference in place", () => {
    expect(interpolateString("${var.x} ${env.Y} ${name}", { vars: {}, env: {} })).toEqual({
      value: "${var.x} ${env.Y} ${name}",
      errors: ["undefined variable var.x", "environment variable Y is not set", "${name} cannot be used here"],
    });
  });
});

describe("fields rendered again at build time (boot.command, http.content, install_media.content)", () => {
  const deferred = { ...scope, defer: true };
  it.each([
    ["${http.ip}:${http.port}", "${http.ip}:${http.port}"],
    ["${http.url}/ks.cfg for ${name}", "${http.url}/ks.cfg for node"],
    ["${ssh.public_key}", "${ssh.public_key}"],
    // The escape survives this pass so the later one (which unescapes it) does not see a reference.
    ["$${HOME} and $${http.ip}", "$${HOME} and $${http.ip}"],
    ["${var.a}", "1"],
  ])("%s", (text, want) => {
    expect(interpolateString(text, deferred)).toEqual({ value: want, errors: [] });
  });

  it("still rejects references that are never valid, listing the later ones", () => {
    expect(interpolateString("${bogus}", deferred).errors).toEqual([
      'unknown reference "${bogus}" (use var.NAME, env.NAME, name, http.ip, http.port, http.url or ssh.public_key)',
    ]);
  });

  it("elsewhere ${http.ip} is an error and $${ is unescaped at once", () => {
    expect(interpolateString("${http.ip}", scope).errors).toEqual(['unknown reference "${http.ip}" (use var.NAME, env.NAME or name)']);
    expect(interpolateString("$${x}", scope).value).toBe("${x}");
  });

  it("isRenderedLater picks exactly those fields", async () => {
    const { isRenderedLater } = await import("../../../src/template/load.js");
    expect(isRenderedLater(["boot", "command", 0])).toBe(true);
    expect(isRenderedLater(["http", "content", "/ks.cfg"])).toBe(true);
    expect(isRenderedLater(["install_media", "content", "ks.cfg"])).toBe(true);
    expect(isRenderedLater(["http", "directory"])).toBe(false);
    expect(isRenderedLater(["provision", 0, "shell", "inline", 0])).toBe(false);
  });
});
