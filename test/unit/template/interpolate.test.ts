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
