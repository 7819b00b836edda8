// --offline refuses every network access (issue 17): output.publish pushes to a registry, so a plain
// build with it is refused in the prepare step, before anything is fetched or created. (Before, the
// build ran and pushed.) Layered builds check it before any stage: test/unit/layers/build.test.ts.
import { describe, expect, it } from "vitest";
import type { BuildContext } from "../../../src/pipeline/context.js";
import { prepareStep } from "../../../src/steps/prepare.js";

const ctx = (offline: boolean, publish: number) =>
  ({
    options: { offline, force: false },
    driver: { name: "qemu", capabilities: { remote: false } },
    spec: { output: { publish: Array.from({ length: publish }, () => ({ to: "oci://127.0.0.1:9/vm/x:1" })) } },
  }) as unknown as BuildContext;

describe("prepare step: --offline and output.publish", () => {
  it("refuses the pair with a one-line exit-2 error", async () => {
    await expect(prepareStep.run(ctx(true, 1), new AbortController().signal)).rejects.toMatchObject({
      code: "OFFLINE_NETWORK",
      exitCode: 2,
      message: "--offline: output.publish pushes to a registry over the network; build without --offline, or push later with vmkiln push",
    });
  });

  it("lets either alone through to the next check", async () => {
    // Without --offline (or without publish) the step goes on to the output guard, which this fake
    // context cannot satisfy: any error but OFFLINE_NETWORK shows the check let it through.
    for (const c of [ctx(false, 1), ctx(true, 0)]) {
      const err = await prepareStep.run(c, new AbortController().signal).catch((e: unknown) => e);
      expect((err as { code?: string } | undefined)?.code).not.toBe("OFFLINE_NETWORK");
    }
  });
});
