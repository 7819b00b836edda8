import type { BuildContext } from "./context.js";

// Packer's multistep, typed (docs/architecture.md "Steps and undo"). A step acquires, then registers its
// undo right away with ctx.defer.
export interface Step {
  readonly name: string;
  run(ctx: BuildContext, signal: AbortSignal): Promise<void>;
}
