import type { EventBus } from "../log/events.js";

/** What a command needs from the outside world; the CLI entry builds it, tests fake it. */
export interface CliIO {
  /** One line to stdout (results). */
  out(line: string): void;
  /** One line to stderr (diagnostics). */
  err(line: string): void;
  events: EventBus;
  signal: AbortSignal;
}
