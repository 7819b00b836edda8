// The HCL2 parser: HashiCorp's own (hashicorp/hcl hclsyntax) compiled to WebAssembly, through
// @cdktn/hcl2json (see README "Coming from Packer" for why this package). Its diagnostics carry
// "file:line,col-…": they become "file:line:col: message".

import { importError } from "./errors.js";
import type { UserError } from "../errors.js";

/**
 * Loaded on first use: the package instantiates its 1.9 MB WebAssembly module when it is imported,
 * which every other vmkiln command (build, validate…) would otherwise pay for at start-up.
 */
let parser: Promise<typeof import("@cdktn/hcl2json")> | undefined;

export async function parseHclFile(display: string, text: string): Promise<Record<string, unknown>> {
  parser ??= import("@cdktn/hcl2json");
  const { parse } = await parser;
  try {
    return (await parse(display, text)) as Record<string, unknown>;
  } catch (err) {
    throw hclDiagnostic(display, err);
  }
}

export function hclDiagnostic(display: string, err: unknown): UserError {
  const msg = err instanceof Error ? err.message : String(err);
  // "parse config: [f.pkr.hcl:2,7-3,1: Invalid expression; Expected the start of an expression…]"
  const m = /:(\d+),(\d+)(?:-\d+(?:,\d+)?)?: ([^\]]*)\]?/.exec(msg);
  if (m) return importError(display, Number(m[1]), `HCL syntax error: ${m[3]!.trim()}`, Number(m[2]));
  return importError(display, undefined, `HCL syntax error: ${msg.replace(/^parse config: \[?|\]$/g, "")}`);
}
