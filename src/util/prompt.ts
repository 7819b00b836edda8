// Waits for a line on the process's standard input (a person pressing Enter). Used only where a
// build pauses for a person: breakpoints and --debug step mode, both only when stdin is a terminal.
import { asAbortError } from "../errors.js";

export function waitForEnter(signal: AbortSignal, input: NodeJS.ReadableStream = process.stdin): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(asAbortError(signal.reason));
    const done = (err?: unknown) => {
      input.off("data", onData);
      input.off("end", onEnd);
      signal.removeEventListener("abort", onAbort);
      input.pause();
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer | string) => {
      if (String(d).includes("\n") || String(d).includes("\r")) done();
    };
    const onEnd = () => done();
    const onAbort = () => done(asAbortError(signal.reason));
    input.on("data", onData);
    input.once("end", onEnd);
    signal.addEventListener("abort", onAbort, { once: true });
    input.resume();
  });
}
