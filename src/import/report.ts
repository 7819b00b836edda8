// Findings while mapping one Packer source: every field is either consumed by a mapper or named here
// as not mapped, with why (the "never a silently dropped field").

import type { Finding } from "./model.js";
import { asText, type Val } from "./values.js";

export class Report {
  readonly findings: Finding[] = [];
  notMapped(path: string, why: string): void {
    this.findings.push({ kind: "not-mapped", path, why });
  }
  note(path: string, text: string): void {
    this.findings.push({ kind: "note", path, text });
  }
  get unmapped(): Extract<Finding, { kind: "not-mapped" }>[] {
    return this.findings.filter((f): f is Extract<Finding, { kind: "not-mapped" }> => f.kind === "not-mapped");
  }
}

/**
 * A Packer block's evaluated body, read by a mapper: each read marks the key consumed; `rest` names
 * every key nobody read, so a field no mapper knows is reported rather than dropped.
 */
export class Body {
  private readonly used = new Set<string>();
  constructor(
    readonly values: Record<string, Val>,
    readonly path: string,
    readonly report: Report,
  ) {}

  at(key: string): string {
    return `${this.path}.${key}`;
  }
  has(key: string): boolean {
    return this.values[key] !== undefined;
  }
  take(key: string): Val | undefined {
    this.used.add(key);
    return this.values[key];
  }
  /** A scalar as vmkiln text; a list or map is reported as not mapped. */
  text(key: string): string | undefined {
    const v = this.take(key);
    if (v === undefined || v === null) return undefined;
    const t = asText(v);
    if (t === undefined) this.report.notMapped(this.at(key), "expected a single value");
    return t;
  }
  /** A list of scalars (a single scalar counts as a one-item list, as Packer's decoder allows). */
  list(key: string): string[] | undefined {
    const v = this.take(key);
    if (v === undefined || v === null) return undefined;
    const items = Array.isArray(v) ? v : [v];
    const out: string[] = [];
    for (const item of items) {
      const t = asText(item);
      if (t === undefined) {
        this.report.notMapped(this.at(key), "expected a list of values");
        return undefined;
      }
      out.push(t);
    }
    return out;
  }
  /** A boolean, also from a variable's text ("true"/"false"); a reference is kept as text. */
  bool(key: string): boolean | string | undefined {
    const v = this.take(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    if (typeof v === "string") return v;
    this.report.notMapped(this.at(key), "expected true or false");
    return undefined;
  }
  /** Blocks (HCL) or a list of objects (JSON). */
  blocks(key: string): Record<string, Val>[] {
    const v = this.take(key);
    if (v === undefined || v === null) return [];
    const items = Array.isArray(v) ? v : [v];
    return items.filter((x): x is Record<string, Val> => x !== null && typeof x === "object" && !Array.isArray(x));
  }
  notMapped(key: string, why: string): void {
    if (!this.has(key)) return;
    this.used.add(key);
    this.report.notMapped(this.at(key), why);
  }
  note(key: string, text: string): void {
    this.report.note(this.at(key), text);
  }
  /** Marks a key consumed with nothing to write (its value is vmkiln's behaviour anyway). */
  same(key: string, text?: string): void {
    if (!this.has(key)) return;
    this.used.add(key);
    if (text) this.note(key, text);
  }
  /** Names every key nobody read. */
  rest(why: string): void {
    for (const key of Object.keys(this.values)) if (!this.used.has(key) && this.values[key] !== undefined) this.notMapped(key, why);
  }
}
