// A registry's error body is quoted in vmkiln's messages: a hostile one must not get terminal escape
// sequences onto the user's screen (headers were escaped by clipHeader; the JSON body was not).
import { expect, it } from "vitest";
import { registryErrors } from "../../../src/publish/registry.js";

it("escapes C0, DEL and C1 controls in the registry's error code and message", () => {
  const body = Buffer.from(JSON.stringify({ errors: [{ code: "DENIED\u001b[2J", message: "go\u0007away\u009b31m\u007f" }] }));
  const text = registryErrors(body);
  expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  expect(text).toBe("DENIED\\u001b[2J: go\\u0007away\\u009b31m\\u007f");
});

it("keeps plain text as it is, and gives nothing for a body that is not the errors shape", () => {
  expect(registryErrors(Buffer.from(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] })))).toBe("UNAUTHORIZED: authentication required");
  for (const b of ["null", "[]", "{", '{"errors": 3}']) expect(registryErrors(Buffer.from(b))).toBe("");
});
