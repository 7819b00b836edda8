// TTY reporter: per-step lines with durations and live progress bars (download, convert, pack).
import cliProgress from "cli-progress";
import type { EventSink } from "../events.js";
import { bytes, formatPlain } from "./plain.js";

export function ttyReporter(o: { stream: NodeJS.WriteStream; debug: boolean }): EventSink {
  const multi = new cliProgress.MultiBar(
    {
      stream: o.stream,
      clearOnComplete: true,
      hideCursor: true,
      format: (options, params, payload: { task: string; unit: string }) => {
        const width = options.barsize ?? 30;
        const filled = Math.round(params.progress * width);
        const bar = "█".repeat(filled) + "░".repeat(width - filled);
        const amount = payload.unit === "bytes" ? `${bytes(params.value)}/${bytes(params.total)}` : `${Math.round(params.value)}%`;
        return `    ${payload.task} ${bar} ${amount} ${Math.round(params.progress * 100)}%`;
      },
    },
    cliProgress.Presets.shades_grey,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const color = (code: number, s: string) => `\x1b[${code}m${s}\x1b[0m`;
  return (e) => {
    // Several builds at once: one bar per build and task, named after both.
    const task = e.type === "progress" || e.type === "progress-end" ? (e.build === undefined ? e.task : `[${e.build}] ${e.task}`) : "";
    if (e.type === "progress") {
      let bar = bars.get(task);
      if (!bar) {
        bar = multi.create(e.total ?? 100, 0, { task, unit: e.unit });
        bars.set(task, bar);
      }
      if (e.total !== undefined) bar.setTotal(e.total);
      bar.update(e.done, { task, unit: e.unit });
      return;
    }
    if (e.type === "progress-end") {
      const bar = bars.get(task);
      if (bar) {
        bar.stop();
        multi.remove(bar);
        bars.delete(task);
      }
      if (bars.size === 0) multi.stop();
      return;
    }
    let line = formatPlain(e, o.debug, undefined, e.build);
    if (line === undefined) return;
    if (e.type === "step-start") line = color(1, line);
    else if (e.type === "log" && e.level === "warn") line = color(33, line);
    else if (e.type === "log" && e.level === "error") line = color(31, line);
    else if (e.type === "step-end" && !e.ok) line = color(31, line);
    else if (e.type === "check") line = color(e.outcome === "pass" ? 32 : e.outcome === "fail" ? 31 : 33, line);
    else if (e.type === "test-end") line = color(e.ok ? 32 : 31, line);
    if (bars.size > 0) multi.log(line + "\n");
    else o.stream.write(line + "\n");
  };
}
