// The library never writes to stdout: it emits typed events; reporters render them
// (docs/architecture.md "Events and reporters"). Every event is masked on its way out, in one place:
// `EventBus.emit` through src/log/redact.ts.
import { Redactor } from "./redact.js";

export type Level = "debug" | "info" | "warn" | "error";

export type BuildEvent =
  | { type: "log"; level: Level; message: string; source?: string }
  | { type: "step-start"; step: string; index: number; total: number }
  | { type: "step-end"; step: string; ok: boolean; durationMs: number; error?: string }
  | { type: "progress"; task: string; done: number; total: number | undefined; unit: "bytes" | "percent" }
  | { type: "progress-end"; task: string }
  | { type: "output"; source: string; stream: "stdout" | "stderr"; line: string }
  | { type: "cleanup"; what: string; ok: boolean; error?: string }
  | { type: "artifact"; name: string; path: string; size: number; sha256: string }
  | { type: "build-end"; ok: boolean; durationMs: number; error?: string; outputDir?: string }
  /** `vmkiln test` (src/check/): one checked property, and the end of an artifact's checks. */
  | { type: "check"; artifact: string; outcome: "pass" | "fail" | "skip"; line: string; result: Record<string, unknown> }
  | { type: "test-end"; artifact: string; ok: boolean; line: string; summary: Record<string, number> };

/** `build`: which of several builds run at once emitted it (EventBus.child); absent for a single build. */
export type EventSink = (event: BuildEvent & { time: string; build?: string }) => void;

export class EventBus {
  private readonly sinks: EventSink[] = [];
  /** Masks secrets in every event; the CLI masks what it prints with the same one (src/log/redact.ts). */
  readonly redactor: Redactor;

  constructor(redactor = new Redactor()) {
    this.redactor = redactor;
  }

  subscribe(sink: EventSink): () => void {
    this.sinks.push(sink);
    return () => {
      const i = this.sinks.indexOf(sink);
      if (i >= 0) this.sinks.splice(i, 1);
    };
  }

  /**
   * A bus for one of several builds run at once: its events reach this bus's sinks tagged with
   * `build`. It shares this bus's Redactor: a secret one build registers at run time (its SSH key)
   * is masked wherever it shows up, including the summary and errors the CLI prints with this bus's
   * redactor after the builds end.
   */
  child(build: string): EventBus {
    const c = new EventBus(this.redactor);
    c.subscribe((e) => {
      for (const sink of this.sinks) sink({ ...e, build });
    });
    return c;
  }

  /** Register a secret (password, private key): every event text containing it is redacted. */
  addSecret(secret: string | undefined): void {
    this.redactor.add(secret);
  }

  get secretList(): string[] {
    return this.redactor.list;
  }

  redact(text: string): string {
    return this.redactor.text(text);
  }

  emit(event: BuildEvent): void {
    const redacted = this.redactEvent(event);
    const stamped = { ...redacted, time: new Date().toISOString() };
    for (const sink of this.sinks) sink(stamped);
  }

  log(level: Level, message: string, source?: string): void {
    this.emit(source === undefined ? { type: "log", level, message } : { type: "log", level, message, source });
  }
  debug(message: string, source?: string): void {
    this.log("debug", message, source);
  }
  info(message: string, source?: string): void {
    this.log("info", message, source);
  }
  warn(message: string, source?: string): void {
    this.log("warn", message, source);
  }

  /** Every text field of every event type (names, paths and step names too, not only messages). */
  private redactEvent(event: BuildEvent): BuildEvent {
    return this.redactor.value(event);
  }
}

/** Reports byte progress as events, throttled so a fast copy doesn't flood reporters. */
export function progressReporter(bus: EventBus, task: string, total: number | undefined, unit: "bytes" | "percent" = "bytes"): {
  add(n: number): void;
  set(n: number): void;
  end(): void;
} {
  let done = 0;
  let last = 0;
  const push = (force: boolean) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    bus.emit({ type: "progress", task, done, total, unit });
  };
  return {
    add(n) {
      done += n;
      push(false);
    },
    set(n) {
      done = n;
      push(false);
    },
    end() {
      push(true);
      bus.emit({ type: "progress-end", task });
    },
  };
}
