// The first-boot judge (src/check/first-boot.ts) on facts as the guest script prints them: a clean
// first boot of a generalized image passes, a dirty image's facts fail each check naming what was
// found. The integration tests (qemu-build, secrets) run the script in real guests.
import { describe, expect, it } from "vitest";
import { FIRST_BOOT_CHECKS, judgeFirstBoot, parseFacts, type FirstBootCheck } from "../../../src/check/first-boot.js";
import { resultLine } from "../../../src/check/results.js";
import type { BuildIdentity } from "../../../src/artifact/manifest.js";

const BUILD_MID = "3cee39d587fb45ba98e24b6fe6fc1ba6";
const id: BuildIdentity = {
  instance_id: "vmkiln-20261205-build",
  machine_id: BUILD_MID,
  host_key_fingerprint: "SHA256:buildkey",
  host_keys: ["SHA256:buildkey"],
  user: "builder",
  key_fingerprint: "SHA256:buildclient",
};
const TEST_IID = "vmkiln-test-1";
const all = Object.fromEntries(FIRST_BOOT_CHECKS.map((k) => [k, true])) as Record<FirstBootCheck, boolean>;
const M = "@vmkiln-fb";

const clean = [
  `${M} machine-id 75ca3e7902a742be9a6512e214672282`,
  `${M} host-key SHA256:newkey /etc/ssh/ssh_host_ed25519_key.pub`,
  `${M} authorized-key SHA256:testclient /home/vmkiln-test/.ssh/authorized_keys`,
  // Init._reflect_cur_instance ran in two stages: the file names this boot's own instance.
  `${M} previous-iid ${TEST_IID}`,
  `${M} iid ${TEST_IID}`,
  `${M} instance-dir ${TEST_IID}`,
  `${M} boots 1`,
  `${M} journal-dir 75ca3e7902a742be9a6512e214672282`,
  `${M} growpart-configured yes`,
  `${M} root-source /dev/vda1`,
  `${M} root-part vda1 2048 6289375 vda 6291456`,
  `${M} root-fs-bytes 3170000000`,
].join("\n");

const judge = (facts: string, enabled = all) =>
  judgeFirstBoot({ facts: parseFacts(facts), identity: id, seenHostKey: "SHA256:newkey", testInstanceId: TEST_IID, cloudInit: { ran: true, errors: [] }, grownBy: 1024 ** 3, enabled, durationMs: 5 });

describe("first-boot checks", () => {
  it("a clean first boot passes every check", () => {
    const r = judge(clean);
    expect(r.filter((x) => x.outcome !== "pass").map(resultLine)).toEqual([]);
    expect(r.map((x) => `${x.resourceId}/${x.property}`)).toEqual([
      "machine_id/regenerated", "ssh_host_keys/regenerated", "build_user/user", "build_user/home", "build_user/sudoers", "build_user/authorized_keys",
      "cloud_init/first boot", "cloud_init/instances", "cloud_init/status", "logs/journal boots", "logs/journal directories", "logs/log files", "growpart/root fills the disk",
    ]);
  });

  it("regression: previous-instance-id naming this boot's own instance is a first boot (it failed every clean image)", () => {
    expect(judge(clean).find((x) => x.property === "first boot")!.outcome).toBe("pass");
    expect(judge(clean.replace(`previous-iid ${TEST_IID}`, "previous-iid NO_PREVIOUS_INSTANCE_ID")).find((x) => x.property === "first boot")!.outcome).toBe("pass");
    const dirty = judge(clean.replace(`previous-iid ${TEST_IID}`, `previous-iid ${id.instance_id}`)).find((x) => x.property === "first boot")!;
    expect(resultLine(dirty)).toBe(`FirstBoot: cloud_init: first boot: expected "previous-instance-id NO_PREVIOUS_INSTANCE_ID or this boot's ${TEST_IID} (no earlier instance)", found "previous-instance-id ${id.instance_id}"`);
  });

  it("a dirty image fails each check, naming what it found", () => {
    const dirty = [
      `${M} machine-id ${BUILD_MID}`,
      `${M} host-key SHA256:buildkey /etc/ssh/ssh_host_ed25519_key.pub`,
      `${M} user-entry builder:x:1000:1000::/home/builder:/bin/bash`,
      `${M} user-home /home/builder`,
      `${M} user-sudoers /etc/sudoers.d/90-cloud-init-users`,
      `${M} authorized-key SHA256:buildclient /home/builder/.ssh/authorized_keys`,
      `${M} previous-iid ${TEST_IID}`,
      `${M} instance-dir ${id.instance_id}`,
      `${M} instance-dir ${TEST_IID}`,
      `${M} boots 3`,
      `${M} journal-dir ${BUILD_MID}`,
      `${M} log-mentions /var/log/cloud-init.log`,
      `${M} journal-build-entries yes`,
    ].join("\n");
    const lines = judge(dirty).filter((x) => x.outcome === "fail").map(resultLine);
    expect(lines).toEqual([
      `FirstBoot: machine_id: regenerated: expected not to equal "${BUILD_MID}", found "${BUILD_MID}"`,
      'FirstBoot: ssh_host_keys: regenerated: expected none to be the build\'s ["SHA256:buildkey"], found ["/etc/ssh/ssh_host_ed25519_key.pub SHA256:buildkey"]',
      'FirstBoot: build_user: user: expected "no user builder", found "/etc/passwd: builder:x:1000:1000::/home/builder:/bin/bash"',
      'FirstBoot: build_user: home: expected "no /home/builder", found "/home/builder"',
      'FirstBoot: build_user: sudoers: expected "no sudoers line for builder", found ["a line for builder in /etc/sudoers.d/90-cloud-init-users"]',
      'FirstBoot: build_user: authorized_keys: expected "no authorized_keys holding the build key SHA256:buildclient", found ["/home/builder/.ssh/authorized_keys"]',
      `FirstBoot: cloud_init: instances: expected "only this boot's instance (${TEST_IID}) in /var/lib/cloud/instances", found ["${id.instance_id}","${TEST_IID}"]`,
      `FirstBoot: logs: journal boots: expected "only this boot in the journal", found "3 boots, with entries of the build's machine-id"`,
      `FirstBoot: logs: journal directories: expected "no journal directory named after the build's machine-id ${BUILD_MID}", found ["${BUILD_MID}"]`,
      `FirstBoot: logs: log files: expected "no file under /var/log naming the build's instance ${id.instance_id}", found ["/var/log/cloud-init.log"]`,
    ]);
  });

  it("a root partition that did not grow fails growpart with the sizes found", () => {
    const r = judge(clean.replace("root-part vda1 2048 6289375 vda 6291456", "root-part vda1 2048 4192256 vda 6291456").replace("root-fs-bytes 3170000000", "root-fs-bytes 2100000000"));
    expect(resultLine(r.find((x) => x.resourceId === "growpart")!)).toBe(
      'FirstBoot: growpart: root fills the disk: expected "/dev/vda1 to reach the end of /dev/vda (3221225472 bytes) and / to fill it", found "/dev/vda1 ends 1073741824 bytes before the end of the disk; / is 2100000000 bytes on a 2146435072-byte partition"',
    );
  });

  it("each check can be switched off: its properties are skipped, saying so", () => {
    const r = judge("", { ...all, machine_id: false, logs: false });
    expect(r.filter((x) => x.resourceId === "machine_id" || x.resourceId === "logs").every((x) => x.outcome === "skip" && x.reason === "switched off")).toBe(true);
  });
});
