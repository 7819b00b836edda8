// The shared power-off escalation (src/pipeline/power-off.ts) on a real guest under the real QEMU
// driver: the ACPI power button the guest honours, and a guest that ignores it, powered off by force
// after shutdown.timeout. (The guest's own power-off, phase 1, is every build's shutdown.)
import { afterEach, describe, expect, it } from "vitest";
import { bootImage, type BootedVm } from "../helpers/boot.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses, qemuSnapshot } from "../helpers/processes.js";
import { describeFull } from "../helpers/tier.js";

// Full tier (test/helpers/tier.ts): every build powers its guest off through phase 1 of the same
// escalation; these two boots add the button and the forced power-off on a real guest.
describeFull("qemu: the power-off escalation on a real guest", () => {
  const vms = qemuSnapshot();
  let booted: BootedVm | undefined;

  afterEach(async () => {
    await booted?.stop();
    booted = undefined;
    expect(vms.leaked()).toEqual([]);
  });

  it("asks through the ACPI power button and the guest powers itself off", async () => {
    booted = await bootImage(await ensureFixtureGuest(), { username: "tester", timeoutMs: 900_000 });
    const started = Date.now();
    // No power-off command ran in the guest: the escalation asks at once.
    await booted.shutdown({ timeoutMs: 300_000, guestInitiated: false });
    expect(booted.logs).toContain("info: asking the guest to shut down (ACPI power button)");
    expect(booted.logs.filter((l) => /forcing power off/.test(l))).toEqual([]);
    expect(Date.now() - started).toBeLessThan(300_000);
    // The guest's kernel powered the machine down (not a kill): its last words are on the console.
    expect(await booted.consoleTail(40)).toMatch(/reboot: Power down/);
  }, 1_200_000);

  it("forces the power off after the timeout when the guest ignores both its command and the button", async () => {
    booted = await bootImage(await ensureFixtureGuest(), { username: "tester", timeoutMs: 900_000 });
    // systemd-logind is what turns the ACPI power button into a power-off: tell it to ignore it.
    await booted.sh("sudo mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nHandlePowerKey=ignore\\n' | sudo tee /etc/systemd/logind.conf.d/ignore-power-key.conf >/dev/null && sudo systemctl restart systemd-logind");
    expect(await booted.sh("busctl get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager HandlePowerKey")).toMatch(/^s "ignore"\s*$/);
    const started = Date.now();
    // As if the build's power-off command had run but the guest kept going.
    await booted.shutdown({ timeoutMs: 5_000, guestInitiated: true });
    const took = Date.now() - started;
    expect(booted.warnings).toEqual(
      expect.arrayContaining([
        "the guest did not power off within 5 s: asking it to shut down (ACPI power button)",
        "the guest did not power off within 5 s of the request (ACPI power button): forcing power off",
      ]),
    );
    expect(took).toBeGreaterThanOrEqual(10_000); // both waits ran in full
    expect(took).toBeLessThan(60_000);
    expect(await booted.consoleTail(40)).not.toMatch(/reboot: Power down/);
    expect(qemuProcesses().filter((p) => /vmkiln-boot-/.test(p.cmdline))).toEqual([]);
  }, 1_200_000);
});
