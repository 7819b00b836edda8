import { BuildError, UserError } from "../errors.js";

/** A child process failed: the command, its exit code and the last lines of its stderr. */
export class ToolError extends BuildError {
  readonly command: string;
  readonly exitCodeOfTool: number | undefined;
  readonly stderrTail: string;

  constructor(command: string, exitCode: number | undefined, stderrTail: string, message?: string) {
    const what = exitCode === undefined ? "failed" : `exited with code ${exitCode}`;
    super("TOOL_FAILED", message ?? `${command} ${what}${stderrTail ? `: ${lastLine(stderrTail)}` : ""}`);
    this.command = command;
    this.exitCodeOfTool = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** The program is not installed: the user fixes that, so it is a UserError with an install hint. */
export class ToolMissingError extends UserError {
  constructor(tool: string, hint: string) {
    super("TOOL_MISSING", `${tool} not found on PATH`, { hint });
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}
