/** One problem verify (or pack-ova's self-check) found. `code` is stable; tests and scripts match it. */
export interface Finding {
  code: string;
  message: string;
  member?: string;
}

export function finding(code: string, message: string, member?: string): Finding {
  return member === undefined ? { code, message } : { code, message, member };
}
