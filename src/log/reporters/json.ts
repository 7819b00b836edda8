import type { EventSink } from "../events.js";

/** `--json`: one JSON object per line, every event (debug ones only with --debug). */
export function jsonReporter(o: { write: (line: string) => void; debug: boolean }): EventSink {
  return (e) => {
    if (e.type === "log" && e.level === "debug" && !o.debug) return;
    o.write(JSON.stringify(e));
  };
}
