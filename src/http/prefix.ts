// The installer HTTP server's path prefix: answer files hold keys and password hashes, and the
// server listens where other hosts (or users) may reach it, so by default everything is served
// under a random path only the build's boot command and answer files know (http.path_prefix).
//
// How templates get it: `${http.url}` includes it; `${http.prefix}` / `{{ .HTTPPrefix }}` is the
// prefix itself ("/k3…", or "" without one). A URL a Packer template builds itself,
// `http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg`, gets the prefix right after the port: any port
// written after a colon (`:{{ .HTTPPort }}`, `:${http.port}`) is followed by it, unless the prefix
// follows already. So migrated boot commands and answer files work unchanged.
import { randomBytes } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"; // lower case: typed without Shift

/** A fresh prefix, "/" and 20 characters (100 random bits). */
export function newPathPrefix(): string {
  return "/" + [...randomBytes(20)].map((b) => ALPHABET[b % 32]).join("");
}

const PORT_REF = String.raw`(?:\{\{\s*\.HTTPPort\s*\}\}|(?<!\$)\$\{\s*http\.port\s*\})`;
const PREFIX_REF = String.raw`(?:\{\{\s*\.HTTPPrefix\s*\}\}|\$\{\s*http\.prefix\s*\})`;
const PORT_IN_URL = new RegExp(`:${PORT_REF}(?!${PREFIX_REF})`, "g");

/** Puts `prefix` after every `:{{ .HTTPPort }}` / `:${http.port}` in `text` (nothing when prefix is ""). */
export function prefixAfterPort(text: string, prefix: string): string {
  if (!prefix) return text;
  return text.replace(PORT_IN_URL, (m) => m + prefix);
}
