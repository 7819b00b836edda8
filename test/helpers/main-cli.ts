// The CLI run in-process (src/cli/main.ts's `main`) with its stdout and stderr captured: for unit tests
// of commands that boot nothing. Tests that measure or kill the CLI run it as a child (helpers/cli.ts).
import { main } from "../../src/cli/main.js";

/** A write stream that is not a TTY and keeps what was written. */
export function fakeStream(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = "";
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

/** Runs `vmkiln <argv>`; `all` is stdout then stderr. */
export async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string; all: string }> {
  const out = fakeStream();
  const err = fakeStream();
  const code = await main(argv, { stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text(), all: out.text() + err.text() };
}
