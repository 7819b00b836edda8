// One error family (docs/architecture.md "Errors and exit codes"). The CLI entry is the only place
// that prints them.

export interface VmkilnErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
}

export class VmkilnError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(code: string, message: string, opts: VmkilnErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
  }
}

/** Bad template, missing file, checksum mismatch: the user can fix it. Exit 2. */
export class UserError extends VmkilnError {
  override readonly exitCode = 2;
}

/** Something went wrong while building. Exit 1. */
export class BuildError extends VmkilnError {
  override readonly exitCode = 1;
}

/** The build was interrupted (SIGINT/SIGTERM or an abort). Exit 130. */
export class AbortError extends VmkilnError {
  override readonly exitCode = 130;
  constructor(message = "interrupted", opts: VmkilnErrorOptions = {}) {
    super("ABORTED", message, opts);
  }
}

/** A validation problem list: every problem at once, each with its field path. */
export interface Problem {
  path: string;
  message: string;
  /**
   * What kind of problem, for tools reading `validate --json`: TEMPLATE_SYNTAX, UNKNOWN_FIELD,
   * REQUIRED, BOOT_COMMAND_UNKNOWN_KEY (a warning); absent means the error's own code.
   */
  code?: string;
}

export class TemplateError extends UserError {
  readonly problems: Problem[];
  /** What is valid but most likely a mistake, found on the way (printed with the problems). */
  readonly warnings: Problem[];
  constructor(file: string, problems: Problem[], warnings: Problem[] = []) {
    super(
      "TEMPLATE_INVALID",
      problems.length === 1
        ? `${file}: ${formatProblem(problems[0]!)}`
        : `${file}: ${problems.length} problems:\n` + problems.map((p) => `  ${formatProblem(p)}`).join("\n"),
    );
    this.problems = problems;
    this.warnings = warnings;
  }
}

export function formatProblem(p: Problem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

/** Throws the signal's reason as an AbortError when it is aborted. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw asAbortError(signal.reason);
}

export function asAbortError(reason: unknown): AbortError {
  if (reason instanceof AbortError) return reason;
  return new AbortError(reason instanceof Error ? reason.message : "interrupted", { cause: reason });
}

export function isAbortLike(err: unknown): boolean {
  return (
    err instanceof AbortError ||
    (err instanceof Error && (err.name === "AbortError" || (err as { isCanceled?: boolean }).isCanceled === true))
  );
}

/** Wraps a thrown value into a message without a stack (used when joining cleanup errors). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
