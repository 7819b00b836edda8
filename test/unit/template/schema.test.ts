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
      required: ["name", "source", "drivers"],
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

  it("is plain JSON", () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });
});
