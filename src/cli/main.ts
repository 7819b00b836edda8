// The CLI entry: the only place that catches and prints errors (docs/architecture.md "Errors and exit codes").
import { Command, CommanderError, Option } from "commander";
import { AbortError, TemplateError, VmkilnError, formatProblem } from "../errors.js";
import { EventBus } from "../log/events.js";
import { jsonReporter } from "../log/reporters/json.js";
import { plainReporter } from "../log/reporters/plain.js";
import { ttyReporter } from "../log/reporters/tty.js";
import { VMKILN_VERSION } from "../artifact/manifest.js";
import type { CliIO } from "./io.js";
import type { PushCliOptions } from "./push.js";
import { inspectCommand, schemaCommand, validateCommand } from "./validate.js";
import type { TestCommandOptions } from "./test.js";
import { deliverPendingSignals } from "../util/abort.js";
// build, gc, pack-ova, verify and test load the drivers, SSH, HTTP and OVF code (most of the start-up
// time); they are imported when run, so `validate` on every save in an editor starts quickly.

export interface MainIO {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export async function main(argv: string[], io: MainIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  let stopping = "stopping"; // a build says what it undoes
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      io.stderr.write(`\n${sig}: ${stopping}\n`);
      controller.abort(new AbortError(`interrupted by ${sig}`));
    } else {
      io.stderr.write(`${sig}: quitting without cleanup; run 'vmkiln gc' later\n`);
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const events = new EventBus();
  // Every line the CLI writes is masked with the bus's redactor, which the template loader fills with
  // the template's secrets (src/log/redact.ts): results, reporters, errors, hints, --debug stacks.
  const mask = (s: string) => events.redactor.text(s);
  let debug = argv.includes("--debug");
  const cli: CliIO = {
    out: (l) => io.stdout.write(mask(l) + "\n"),
    err: (l) => io.stderr.write(mask(l) + "\n"),
    events,
    signal: controller.signal,
  };
  const attachReporter = (json: boolean) => {
    if (json) events.subscribe(jsonReporter({ write: cli.out, debug }));
    else if (io.stderr.isTTY) events.subscribe(ttyReporter({ stream: io.stderr, debug }));
    else events.subscribe(plainReporter({ write: cli.err, debug }));
  };

  const program = new Command("vmkiln")
    .description("Build virtual-machine images by driving hypervisors directly.")
    .version(VMKILN_VERSION)
    .option("--debug", "show debug output and stack traces; build: print how to SSH into the VM and, on a terminal, pause before each step")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(mask(s)), writeErr: (s) => io.stderr.write(mask(s)) });

  let code = 0;
  const varOpts = (c: Command) =>
    c.option("--var <k=v>", "set a variable (repeatable; -var also works)", collect, []).option("--var-file <file>", "read variables from a YAML/JSON file (repeatable)", collect, []);

  varOpts(program.command("build <templates...>").description("build an image (several templates or drivers: several builds, run at once)"))
    .option("--only <driver>", "build with this driver only (a comma-separated list: one build per driver)")
    .option("--parallel <n>", "builds at once (default: what the cores allow for the accelerator)")
    .option("--fail-fast", "stop every other build when one fails")
    .option("--force", "replace an existing output directory")
    .addOption(new Option("--on-error <mode>", "on failure: undo everything, or keep it for inspection").choices(["cleanup", "abort"]).default("cleanup"))
    .option("--json", "JSON lines instead of human output")
    .option("--offline", "no network access: sources and stages come from the cache (vmkiln cache import)")
    .option("--no-cache", "layered templates: build every stage again and replace its cache entry")
    .action(async (templates: string[], o: { json?: boolean; var: string[]; varFile: string[]; only?: string; force?: boolean; onError?: string; parallel?: string; failFast?: boolean; offline?: boolean; cache?: boolean }) => {
      attachReporter(o.json ?? false);
      stopping = `stopping; undoing what ${templates.length > 1 || o.only?.includes(",") ? "the builds" : "this build"} created (press Ctrl-C again to quit without cleanup)`;
      const { buildCommand } = await import("./build.js");
      code = await buildCommand(templates, { ...o, debug }, cli);
    });
  varOpts(program.command("validate <template>").description("check a template; every problem at once"))
    .option("--json", "one JSON object: ok, problems and warnings (path, message, code)")
    .action(async (template: string, o: { var: string[]; varFile: string[]; json?: boolean }) => {
      code = await validateCommand(template, o, cli);
    });
  varOpts(program.command("inspect <template>").description("print the normalized build spec"))
    .action(async (template: string, o: { var: string[]; varFile: string[] }) => {
      code = await inspectCommand(template, o, cli);
    });
  program
    .command("import <packer-template>")
    .description("turn a Packer template (JSON, HCL2 file or directory) into a vmkiln template")
    .option("--var <k=v>", "set a Packer variable's value (repeatable; -var also works)", collect, [])
    .option("--var-file <file>", "read Packer variables from a JSON or *.pkrvars.hcl file (repeatable)", collect, [])
    .option("-o, --output <file>", "the vmkiln template to write (several sources: one file each, named after the source)", "vmkiln.yaml")
    .option("--only <name>", "import this Packer source/builder only")
    .option("--strict", "exit 2 (and write nothing) if any Packer field was not mapped")
    .option("--force", "replace existing files")
    .option("--json", "JSON summary on stdout")
    .action(async (template: string, o: { var: string[]; varFile: string[]; output: string; only?: string; strict?: boolean; force?: boolean; json?: boolean }) => {
      const { importCommand } = await import("./import.js");
      code = await importCommand(template, o, cli);
    });
  program.command("schema").description("print the template JSON Schema").action(() => {
    code = schemaCommand(cli);
  });
  program
    .command("pack-ova <input>")
    .description("pack an OVF and its disks into a compliant OVA")
    .option("-o, --output <file>", "the OVA to write")
    .option("--sign <key.pem>", "sign the manifest with this private key (a .cert member; with --cert)")
    .option("--cert <certificate.pem>", "the X.509 certificate of the signing key (PEM)")
    .option("--passphrase-file <file>", "passphrase of an encrypted key (default: $VMKILN_OVA_KEY_PASSPHRASE)")
    .option("--force", "replace an existing output file (never one of the inputs)")
    .option("--json", "JSON output")
    .action(async (input: string, o: { output?: string; force?: boolean; json?: boolean; sign?: string; cert?: string; passphraseFile?: string }) => {
      attachReporter(o.json ?? false);
      const { packOvaCommand } = await import("./pack-ova.js");
      code = await packOvaCommand(input, o, cli);
    });
  program
    .command("push <artifact> <destination>")
    .description("push a qcow2 (or a build's output directory) to an OCI registry: oci://HOST[:PORT]/REPOSITORY[:TAG]")
    .addOption(new Option("--as <layout>", "containerdisk: a KubeVirt containerDisk image; artifact: an OCI artifact").choices(["containerdisk", "artifact"]).default("containerdisk"))
    .option("--ca-file <pem>", "trust this CA for the registry's TLS certificate")
    .option("--insecure", "plain HTTP or unverified TLS (lab registries only)")
    .option("--chunk-size <size>", "upload chunk size (e.g. 32M); a blob up to one chunk goes in one request")
    .option("--arch <arch>", "architecture in the image config (default amd64)")
    .option("--retries <n>", "tries of a failed chunk before giving up (default 5; back-off 0.5 s doubling)")
    .option("--json", "JSON output")
    .action(async (artifact: string, destination: string, o: PushCliOptions) => {
      attachReporter(o.json ?? false);
      const { pushCommand } = await import("./push.js");
      code = await pushCommand(artifact, destination, o, cli);
    });
  program
    .command("verify <target>")
    .description("check an OVA (or an OVF directory) against the import rules, and its signature when signed")
    .option("--ca-file <pem>", "a signed package's certificate must chain to one of these CA certificates")
    .option("--json", "JSON output")
    .action(async (target: string, o: { json?: boolean; caFile?: string }) => {
      const { verifyCommand } = await import("./verify.js");
      code = await verifyCommand(target, o, cli);
    });
  const cache = program.command("cache").description("the build cache: stage entries of layered templates, and sources");
  cache.command("ls").description("list stage entries, most recently used first").option("--json", "JSON output").action(async (o: { json?: boolean }) => {
    code = await (await import("./cache.js")).cacheLs(o, cli);
  });
  cache.command("rm <key...>").description("remove stage entries by key (or a unique prefix of 8+ digits)").action(async (keys: string[]) => {
    code = await (await import("./cache.js")).cacheRm(keys, cli);
  });
  cache
    .command("prune")
    .description("remove stage entries: beyond the N most recently used, unused for a while, or over a size")
    .option("--keep <n>", "keep the N most recently used entries")
    .option("--older-than <duration>", "remove entries unused for longer than this (e.g. 14d)")
    .option("--max-size <size>", "remove least recently used entries until the total is at most this (e.g. 50G)")
    .option("--dry-run", "only list")
    .action(async (o: { keep?: string; olderThan?: string; maxSize?: string; dryRun?: boolean }) => {
      code = await (await import("./cache.js")).cachePrune(o, cli);
    });
  cache
    .command("export")
    .description("write every source and stage entry into one tar, for an air-gapped machine")
    .option("-o, --output <bundle.tar>", "the tar to write")
    .option("--force", "replace an existing file")
    .action(async (o: { output?: string; force?: boolean }) => {
      code = await (await import("./cache.js")).cacheExport(o, cli);
    });
  cache.command("import <bundle.tar>").description("verify a bundle from 'cache export' and add its entries to this cache").action(async (file: string) => {
    code = await (await import("./cache.js")).cacheImport(file, cli);
  });
  program
    .command("test <artifact...>")
    .description("boot an image (qcow2, raw, VMDK, OVA) as its user would and check it: first-boot checks and goss files")
    .option("--checks <file>", "a goss file to evaluate in the guest (repeatable)", collect, [])
    .option("--vars <file>", "values for the goss files' {{ .Vars }} (YAML or JSON)")
    .option("--driver <name>", "the hypervisor to boot with", "qemu")
    .option("--json", "JSON lines (one event per check)")
    .option("--junit <file>", "write JUnit XML for CI")
    .option("--skip <check>", "switch off a built-in first-boot check (repeatable): machine_id, ssh_host_keys, build_user, cloud_init, logs, growpart", collect, [])
    .option("--no-first-boot", "switch off every built-in first-boot check")
    .option("--goss-binary <file>", "upload and run this goss binary instead of vmkiln's evaluation")
    .option("--retry-timeout <duration>", "retry failing goss checks until this much time has passed (goss validate --retry-timeout)")
    .option("--sleep <duration>", "time between retries (default 1s)")
    .option("--timeout <duration>", "how long the boot may take to answer SSH and finish cloud-init (default 10m)")
    .option("--disk-size <size>", "the test disk's size (default: the image's + 1G, so growpart has work)")
    .option("--manifest <file>", "the build's manifest.json (default: the one beside the artifact)")
    .action(async (artifacts: string[], o: TestCommandOptions) => {
      attachReporter(o.json ?? false);
      const { testCommand } = await import("./test.js");
      code = await testCommand(artifacts, { ...o, debug }, cli);
    });
  program
    .command("gc")
    .description("remove what killed builds left behind (VMs, temp dirs)")
    .option("--dry-run", "only list")
    .action(async (o: { dryRun?: boolean }) => {
      const { gcCommand } = await import("./gc.js");
      code = await gcCommand(o, cli);
    });

  try {
    await program.parseAsync(packerFlags(argv), { from: "user" });
    debug = program.opts<{ debug?: boolean }>().debug ?? debug;
    // An interrupt that came while the loop was blocked (a huge template) is only now delivered:
    // it still means exit 130, not the command's result.
    await deliverPendingSignals();
    if (controller.signal.aborted) throw controller.signal.reason;
    return code;
  } catch (err) {
    await deliverPendingSignals();
    return report(err, debug, { stderr: { write: (s: string) => io.stderr.write(mask(s)) } }, controller.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function report(err: unknown, debug: boolean, io: { stderr: { write(s: string): unknown } }, signal: AbortSignal): number {
  if (err instanceof CommanderError) {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) return 0;
    return 2; // commander already printed the usage error
  }
  if (signal.aborted && !(err instanceof VmkilnError && !(err instanceof AbortError))) {
    io.stderr.write(`vmkiln: ${signal.reason instanceof Error ? signal.reason.message : "interrupted"}; cleaned up\n`);
    return 130;
  }
  if (err instanceof VmkilnError) {
    io.stderr.write(`vmkiln: error: ${err.message}\n`);
    if (err.hint) io.stderr.write(`vmkiln: hint: ${err.hint}\n`);
    if (err instanceof TemplateError) for (const w of err.warnings) io.stderr.write(`vmkiln: warning: ${formatProblem(w)}\n`);
    if (debug && err.stack) io.stderr.write(err.stack + "\n");
    return err.exitCode;
  }
  io.stderr.write(`vmkiln: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug && err instanceof Error && err.stack) io.stderr.write(err.stack + "\n");
  else io.stderr.write("vmkiln: run with --debug for the stack trace\n");
  return 1;
}

/** Packer spells them `-var k=v` and `-var-file f`; commander only takes one-letter short flags. */
export function packerFlags(argv: string[]): string[] {
  return argv.map((a) => (a === "-var" || a === "-var-file" || a.startsWith("-var=") || a.startsWith("-var-file=") ? "-" + a : a));
}
