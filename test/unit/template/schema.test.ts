import { describe, expect, it } from "vitest";
import { templateJsonSchema } from "../../../src/template/schema.js";

/** Walks a JSON value by a dotted path ("properties.source.description"); numbers index arrays. */
function at(value: unknown, dotted: string): unknown {
  let cur = value;
  for (const key of dotted.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

describe("templateJsonSchema", () => {
  const schema = templateJsonSchema();

  it("is a draft 2020-12 object schema with a title and the main sections", () => {
    expect(schema).toMatchObject({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      title: "vmkiln template",
      type: "object",
      required: ["name", "drivers"],
      additionalProperties: false,
    });
    for (const key of ["name", "variables", "source", "drivers", "ssh", "cloud_init", "provision", "generalize", "shutdown", "output"])
      expect(at(schema, `properties.${key}`), key).toBeDefined();
  });

  it("carries hover text and defaults for editors", () => {
    expect(at(schema, "properties.source.description")).toMatch(/exactly one of cloud_image, iso or clone/);
    expect(at(schema, "properties.source.properties.cloud_image.properties.checksum.description")).toMatch(/sha256/);
    const qemu = "properties.drivers.properties.qemu.anyOf.0.properties";
    expect(at(schema, `${qemu}.cpus`)).toMatchObject({ default: 2, description: "Virtual CPUs." });
    expect(at(schema, `${qemu}.memory.default`)).toBe(1024);
    expect(at(schema, `${qemu}.accelerator`)).toMatchObject({ default: "auto", enum: ["auto", "kvm", "tcg"] });
    expect(at(schema, "properties.ssh.anyOf.0.properties.timeout.default")).toBe("15m");
  });

  it("describes provisioners as single-key maps", () => {
    const items = at(schema, "properties.provision.anyOf.0.items");
    expect(Object.keys(at(items, "properties") as object)).toEqual(["shell", "file", "wait_cloud_init", "ansible", "ansible_local", "shell_local", "restart", "breakpoint"]);
    expect(items).toMatchObject({ minProperties: 1, maxProperties: 1, additionalProperties: false });
  });

  it("describes layered templates: from: or source: (one of them), stages: (not with provision:), per-stage generalize", () => {
    expect(schema).toMatchObject({
      anyOf: [{ required: ["source"] }, { required: ["from"] }],
      allOf: [{ not: { required: ["source", "from"] } }, { not: { required: ["stages", "provision"] } }],
    });
    expect(at(schema, "properties.source.description")).toMatch(/Required unless from:/);
    expect(at(schema, "properties.from")).toMatchObject({ type: "string", minLength: 1 });
    expect(at(schema, "properties.from.description")).toMatch(/another template \(a path relative to this file\)/);
    expect(at(schema, "properties.stages")).toMatchObject({ type: "array", minItems: 1 });
    const item = at(schema, "properties.stages.items") as Record<string, unknown>;
    expect(item).toMatchObject({ type: "object", additionalProperties: false, required: ["name"] });
    expect(Object.keys(at(item, "properties") as object)).toEqual(["name", "from", "provision", "generalize"]);
    expect(at(item, "properties.name.pattern")).toBe("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$");
    expect(at(item, "properties.generalize.description")).toMatch(/only the last stage generalizes/);
    expect(at(item, "properties.generalize.anyOf.1.properties.machine_id")).toBeDefined();
    // The top-level generalize keeps its own text.
    expect(at(schema, "properties.generalize.description")).toMatch(/^Make the image look as if it had never booted/);
  });

  it("is plain JSON", () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });
});
