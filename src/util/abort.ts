import { asAbortError } from "../errors.js";

/** setTimeout as a promise that rejects with AbortError when the signal fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(asAbortError(signal.reason));
    const onAbort = () => {
      clearTimeout(t);
      reject(asAbortError(signal.reason));
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Races a promise against the signal (the promise itself keeps running; use for waits only). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(asAbortError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(asAbortError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Lets a signal that arrived while the event loop was blocked (a long synchronous parse) reach its
 * handler before the caller decides what happened. The kernel's signal is queued by libuv and read
 * in the loop's poll phase; after work that resumed from an I/O callback, the next check phase
 * (one setImmediate) still comes before the next poll, so it takes two: the second one runs after a
 * poll phase has read the queue. Without this, `vmkiln validate` on a huge template finished, printed
 * "ok" and exited 0 after Ctrl-C.
 */
export async function deliverPendingSignals(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
