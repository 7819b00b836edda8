// A TypeScript project using the installed package by name: type-checked only (strict,
// skipLibCheck false), never run, with the README's examples beside it. See README.md next to it.
import {
  AbortError,
  BuildError,
  TemplateError,
  UserError,
  VmkilnError,
  buildImage,
  builtinDrivers,
  jsonReporter,
  loadTemplate,
  packOva,
  specFromObject,
  templateJsonSchema,
  verifyOva,
  type BuildResult,
  type BuildSpec,
  type Driver,
  type DriverFactory,
  type Problem,
  type TimedBuildEvent,
  type VerifyResult,
} from "vmkiln";

export async function everythingTyped(): Promise<void> {
  const spec: BuildSpec = specFromObject({ name: "x", source: {}, drivers: { qemu: {} } }, { baseDir: "." });
  const memory: number = spec.drivers.qemu!.memory;
  const formats: string[] = spec.output.formats;

  try {
    await loadTemplate("bad.yaml");
  } catch (err) {
    if (err instanceof TemplateError) {
      const problems: Problem[] = err.problems;
      const first: string = `${problems[0]?.path}: ${problems[0]?.message}`;
      const exit: number = err.exitCode;
      const isUser: UserError = err;
      void [first, exit, isUser];
    }
    if (err instanceof VmkilnError) void (err.code satisfies string);
  }

  const seen: TimedBuildEvent[] = [];
  const factory: DriverFactory | undefined = builtinDrivers().qemu;
  const r: BuildResult = await buildImage(spec, { only: "qemu", onError: "abort", force: true, onEvent: (e) => seen.push(e), signal: AbortSignal.timeout(1000) });
  const ok: boolean = r.ok;
  const buildId: string = r.buildId;

  const packed = await packOva("export/", { out: "x.ova", onEvent: jsonReporter({ write: (l) => void l, debug: false }) });
  const checked: VerifyResult = await verifyOva(packed.path);
  const codes: string[] = checked.findings.map((f) => f.code);

  const schema: object = templateJsonSchema();
  const errors = [new AbortError(), new BuildError("X", "y"), new UserError("X", "y")] satisfies VmkilnError[];
  void [memory, formats, factory, ok, buildId, codes, schema, errors];

  // Wrong uses must not compile (if the package's types were `any`, these lines would be errors).
  // @ts-expect-error a template is a path
  await loadTemplate(42);
  // @ts-expect-error onError is "cleanup" or "abort"
  await buildImage(spec, { onError: "ignore" });
  // @ts-expect-error only names one of the template's driver kinds
  await buildImage(spec, { only: "hyperv" });
  // @ts-expect-error events are a closed union
  seen.push({ type: "nope", time: "" });
  // @ts-expect-error a driver must implement the whole contract (shutdown, exportDisk, destroyVm…)
  const incomplete: Driver = { name: "qemu", capabilities: { sources: [], keystrokes: false, exports: [] }, createVm: async () => ({ id: "x", driver: "qemu" }) };
  // @ts-expect-error ok is a boolean
  const wrong: number = (await verifyOva("x.ova")).ok;
  void [incomplete, wrong];
}
