import { TemplateError } from "../../src/errors.js";

/** Runs `fn` expecting a TemplateError; returns its problems as path → message. */
export function problemsOf(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (err) {
    if (err instanceof TemplateError) return Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    throw err;
  }
  throw new Error("expected a TemplateError");
}
