// Secrets are masked in one place (docs/architecture.md "Errors and output"): this module decides
// what is secret and how it is masked; everything that prints goes through one Redactor.
//
// What is secret:
//   - the value of every field named `password` (ssh.password, drivers.vsphere.password, a
//     cloud-init user's password), and VSPHERE_PASSWORD when the vSphere driver falls back to it;
//   - the value of every variable the template marks sensitive (`sensitive: true` on a variable, or
//     the `sensitive_variables` list), wherever it came from (-var, -var-file, `${env.X}`) and into
//     whatever field it flowed;
//   - the user:password part of any URL;
//   - what the build registers at run time (the SSH private key, vSphere session tokens).
// Where it is applied: the template loader masks its problems before throwing (library callers
// print them); EventBus.emit masks every event (build log, reporters, --json); the CLI masks every
// line it writes (results, errors, hints, --debug stacks); manifest.json masks its text fields.
//
// Printed specs (inspect) also mask, by key, fields whose name says secret (password, passwd,
// secret, token) even when their value was never registered.

import type { BuildSpec } from "../template/spec.js";

export const MASK = "***";

/** Keys whose values a printed spec masks whole. */
const SECRET_KEY = /pass(?:word|wd)|secret|token/i;
/** Keys whose values are secrets to search for in every text. */
const PASSWORD_KEY = /^password$/i;
/** `scheme://user:password@` (or `user@`): the userinfo is masked whole. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi;

/** Keys of events and specs that hold machine values, never user text (a short secret must not mask a digest). */
const NOT_TEXT = new Set(["type", "level", "sha256", "stream", "unit", "time"]);

export class Redactor {
  private readonly secrets = new Set<string>();
  private ordered: string[] = [];

  /**
   * Registers a secret. Every non-blank value counts, short ones too (a 3-character password is
   * still the password); its JSON-escaped form is registered with it, so a message that quotes the
   * value with JSON.stringify is masked as well.
   */
  add(secret: string | undefined | null): void {
    if (typeof secret !== "string" || secret.trim() === "") return;
    const before = this.secrets.size;
    this.secrets.add(secret);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret) this.secrets.add(escaped);
    // Longest first, so a secret that contains another is masked whole, not around the shorter one.
    if (this.secrets.size !== before) this.ordered = [...this.secrets].sort((a, b) => b.length - a.length);
  }

  addAll(secrets: Iterable<string | undefined>): void {
    for (const s of secrets) this.add(s);
  }

  get list(): string[] {
    return [...this.secrets];
  }

  /** Masks every registered secret and every URL's userinfo in one text. */
  text(s: string): string {
    let out = s.includes("://") ? s.replace(URL_USERINFO, `$1${MASK}@`) : s;
    for (const secret of this.ordered) if (out.includes(secret)) out = out.split(secret).join(MASK);
    return out;
  }

  /**
   * A deep copy of a JSON-like value with every string masked, and, when `byKey`, the values of
   * secret-named keys (password, token…) replaced whole. Machine fields (digests, event types) are
   * left as they are.
   */
  value<T>(v: T, opts: { byKey?: boolean } = {}): T {
    const walk = (node: unknown, key: string | undefined): unknown => {
      if (key !== undefined && NOT_TEXT.has(key)) return node;
      if (opts.byKey && key !== undefined && SECRET_KEY.test(key) && node !== null && node !== undefined && typeof node !== "object") return MASK;
      if (typeof node === "string") return this.text(node);
      if (Array.isArray(node)) return node.map((item) => walk(item, undefined));
      if (node !== null && typeof node === "object") {
        const out: Record<string, unknown> = {};
        for (const [k, item] of Object.entries(node)) out[this.text(k)] = walk(item, k);
        return out;
      }
      return node;
    };
    return walk(v, undefined) as T;
  }
}

/** Values of `password` fields anywhere in a JSON-like tree (the raw template or a spec). */
export function passwordValues(tree: unknown): string[] {
  const out: string[] = [];
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) for (const item of node) stack.push(item); // not push(...): a long list overflows the stack
    else if (node !== null && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) {
        if (PASSWORD_KEY.test(k) && (typeof v === "string" || typeof v === "number")) out.push(String(v));
        else stack.push(v);
      }
    }
  }
  return out;
}

/** Every secret a spec carries: sensitive variables' values and password fields (env fallbacks included). */
export function specSecrets(spec: BuildSpec): string[] {
  return [...(spec.sensitiveVariables ?? []).map((name) => spec.variables[name]).filter((v): v is string => v !== undefined), ...passwordValues(spec)];
}
