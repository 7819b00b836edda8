// oci:// references: what the distribution spec's grammar allows, and every wrong shape named.
import { describe, expect, it } from "vitest";
import { parseOciReference } from "../../../src/publish/reference.js";

describe("parseOciReference", () => {
  it("host, port, nested repository, tag or digest; latest by default", () => {
    expect(parseOciReference("oci://127.0.0.1:5000/vm/disk:v1")).toEqual({ registry: "127.0.0.1:5000", repository: "vm/disk", reference: "v1", display: "127.0.0.1:5000/vm/disk:v1" });
    expect(parseOciReference("oci://registry.example/a/b/c")).toMatchObject({ repository: "a/b/c", reference: "latest" });
    const d = "sha256:" + "a".repeat(64);
    expect(parseOciReference(`oci://[::1]:5000/x@${d}`)).toMatchObject({ registry: "[::1]:5000", repository: "x", reference: d, display: `[::1]:5000/x@${d}` });
    expect(parseOciReference("oci://h/a__b.c-d/e--f:_T.1-x")).toMatchObject({ repository: "a__b.c-d/e--f", reference: "_T.1-x" });
  });

  it("names what is wrong", () => {
    expect(parseOciReference("docker://h/x")).toMatch(/expected oci:\/\/HOST\/REPOSITORY:TAG/);
    expect(parseOciReference("")).toMatch(/expected oci:\/\//);
    expect(parseOciReference("oci://host")).toMatch(/no repository/);
    expect(parseOciReference("oci:///x")).toMatch(/no repository/);
    expect(parseOciReference("oci://h:99999/x")).toMatch(/port 99999 is out of range/);
    expect(parseOciReference("oci://h/UPPER")).toMatch(/repository "UPPER" must be lowercase/);
    expect(parseOciReference("oci://h/x/../y")).toMatch(/repository/);
    expect(parseOciReference("oci://h/x:-bad")).toMatch(/tag "-bad"/);
    expect(parseOciReference("oci://h/x:" + "t".repeat(129))).toMatch(/tag/);
    expect(parseOciReference("oci://h/x@sha256:abc")).toMatch(/digest "sha256:abc"/);
    expect(parseOciReference("oci://us er@h/x")).toMatch(/registry host/);
    expect(parseOciReference("oci://h/x y")).toMatch(/repository/);
  });
});
