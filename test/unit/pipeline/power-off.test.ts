// The shared power-off escalation against a fake VM on a virtual clock: what each driver hands in
// (waitOff, ask, force) is faked; the order, the waits' lengths and the abort handling are real.
import { describe, expect, it } from "vitest";
import { AbortError, BuildError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { ASK_GRACE_MS, FORCE_GRACE_MS, escalatePowerOff, type PowerOffPrimitives } from "../../../src/pipeline/power-off.js";

interface Guest {
  /** Virtual ms after the start at which the guest powers off by itself (its command ran). */
  offAfterCommand?: number;
  /** Virtual ms after the request at which the guest honours it; undefined: it ignores it. */
  offAfterAsk?: number;
  /** The request itself fails (QMP closed, VMware Tools not running). */
  askFails?: boolean;
  /** Even a forced power-off does not take (a hung hypervisor). */
  forceFails?: boolean;
}

type Phase = "wait" | "ask" | "force";

/** A VM on a virtual clock: waitOff(ms) advances it to the power-off or by ms, whichever is first. */
function fakeVm(guest: Guest, opts: { hangIn?: { phase: Phase; call: number } } = {}) {
  let now = 0;
  let offAt = guest.offAfterCommand ?? Infinity;
  const calls: string[] = [];
  const signals = new Set<AbortSignal>();
  const counts: Record<Phase, number> = { wait: 0, ask: 0, force: 0 };
  /** A call that never settles by itself: it rejects when the signal aborts, as the drivers' waits do. */
  const hang = (phase: Phase, signal: AbortSignal): Promise<never> | undefined => {
    counts[phase]++;
    if (opts.hangIn?.phase !== phase || opts.hangIn.call !== counts[phase]) return undefined;
    return new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
  };
  const p: PowerOffPrimitives = {
    askName: "ACPI power button",
    async waitOff(ms, signal) {
      signals.add(signal);
      calls.push(`wait ${ms}`);
      const h = hang("wait", signal);
      if (h) return h;
      if (offAt <= now + ms) {
        now = Math.max(now, offAt);
        return true;
      }
      now += ms;
      return false;
    },
    async ask(signal) {
      signals.add(signal);
      calls.push("ask");
      const h = hang("ask", signal);
      if (h) return h;
      if (guest.askFails) throw new Error("QMP connection closed");
      if (guest.offAfterAsk !== undefined) offAt = Math.min(offAt, now + guest.offAfterAsk);
    },
    async force(signal) {
      signals.add(signal);
      calls.push("force");
      const h = hang("force", signal);
      if (h) return h;
      if (!guest.forceFails) offAt = now;
    },
  };
  return { p, calls, signals, clock: () => now, counts };
}

function bus() {
  const events = new EventBus();
  const logs: string[] = [];
  events.subscribe((e: BuildEvent) => {
    if (e.type === "log") logs.push(`${e.level}: ${e.message}`);
  });
  return { events, logs };
}

const T = 30_000;
const opts = (events: EventBus, guestInitiated: boolean, timeoutMs = T) => ({ timeoutMs, guestInitiated, events, source: "fake", vmName: "vm-1" });

describe("escalatePowerOff", () => {
  it("guest powers off in time after its own command: only waits, never asks or forces", async () => {
    const vm = fakeVm({ offAfterCommand: 5_000 });
    const { events, logs } = bus();
    const signal = new AbortController().signal;
    await escalatePowerOff(vm.p, opts(events, true), signal);
    expect(vm.calls).toEqual([`wait ${T}`]);
    expect(vm.clock()).toBe(5_000);
    expect(logs).toEqual([]);
    expect([...vm.signals]).toEqual([signal]);
  });

  it("the guest ignores its command but honours the request: waits timeout, asks, waits min(timeout, 60 s)", async () => {
    const vm = fakeVm({ offAfterAsk: 2_000 });
    const { events, logs } = bus();
    await escalatePowerOff(vm.p, opts(events, true), new AbortController().signal);
    expect(vm.calls).toEqual([`wait ${T}`, "ask", `wait ${T}`]);
    expect(vm.clock()).toBe(T + 2_000);
    expect(logs).toEqual(["warn: the guest did not power off within 30 s: asking it to shut down (ACPI power button)"]);
  });

  it("after the guest's own command, the request gets at most ASK_GRACE_MS however long the timeout", async () => {
    const vm = fakeVm({});
    const { events } = bus();
    await escalatePowerOff(vm.p, opts(events, true, 300_000), new AbortController().signal);
    expect(vm.calls).toEqual(["wait 300000", "ask", `wait ${ASK_GRACE_MS}`, "force", `wait ${FORCE_GRACE_MS}`]);
  });

  it("without a guest command (it failed): looks once, asks right away and gives the request the whole timeout", async () => {
    const vm = fakeVm({ offAfterAsk: 100_000 });
    const { events, logs } = bus();
    await escalatePowerOff(vm.p, opts(events, false, 300_000), new AbortController().signal);
    expect(vm.calls).toEqual(["wait 0", "ask", "wait 300000"]);
    expect(vm.clock()).toBe(100_000);
    expect(logs).toEqual(["info: asking the guest to shut down (ACPI power button)"]);
  });

  it("a VM already off when there was no guest command is left alone", async () => {
    const vm = fakeVm({ offAfterCommand: 0 });
    const { events, logs } = bus();
    await escalatePowerOff(vm.p, opts(events, false), new AbortController().signal);
    expect(vm.calls).toEqual(["wait 0"]);
    expect(logs).toEqual([]);
  });

  it("force needed: the guest ignores both, the power is cut and the escalation waits for it to show", async () => {
    const vm = fakeVm({});
    const { events, logs } = bus();
    await escalatePowerOff(vm.p, opts(events, true), new AbortController().signal);
    expect(vm.calls).toEqual([`wait ${T}`, "ask", `wait ${T}`, "force", `wait ${FORCE_GRACE_MS}`]);
    expect(vm.clock()).toBe(2 * T);
    expect(logs).toEqual([
      "warn: the guest did not power off within 30 s: asking it to shut down (ACPI power button)",
      "warn: the guest did not power off within 30 s of the request (ACPI power button): forcing power off",
    ]);
  });

  it("a failing request is a warning and the escalation goes on to the force", async () => {
    const vm = fakeVm({ askFails: true });
    const { events, logs } = bus();
    await escalatePowerOff(vm.p, opts(events, false), new AbortController().signal);
    expect(vm.calls).toEqual(["wait 0", "ask", `wait ${T}`, "force", `wait ${FORCE_GRACE_MS}`]);
    expect(logs).toContain("warn: could not ask the guest to shut down (ACPI power button): QMP connection closed");
  });

  it("a forced power-off that does not take is a BuildError naming the VM", async () => {
    const vm = fakeVm({ forceFails: true });
    const { events } = bus();
    const err = await escalatePowerOff(vm.p, opts(events, true), new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: "POWER_OFF_FAILED", message: "VM vm-1 is still running 60 s after a forced power off" });
  });

  const phases: Array<{ name: string; hangIn: { phase: Phase; call: number }; before: string[] }> = [
    { name: "waiting for the guest's own power-off", hangIn: { phase: "wait", call: 1 }, before: [`wait ${T}`] },
    { name: "the request", hangIn: { phase: "ask", call: 1 }, before: [`wait ${T}`, "ask"] },
    { name: "waiting after the request", hangIn: { phase: "wait", call: 2 }, before: [`wait ${T}`, "ask", `wait ${T}`] },
    { name: "the forced power-off", hangIn: { phase: "force", call: 1 }, before: [`wait ${T}`, "ask", `wait ${T}`, "force"] },
    { name: "waiting for the forced power-off to show", hangIn: { phase: "wait", call: 3 }, before: [`wait ${T}`, "ask", `wait ${T}`, "force", `wait ${FORCE_GRACE_MS}`] },
  ];
  for (const ph of phases) {
    it(`an abort during ${ph.name} rejects with AbortError and runs no later phase`, async () => {
      const vm = fakeVm({}, { hangIn: ph.hangIn });
      const { events } = bus();
      const ac = new AbortController();
      const done = escalatePowerOff(vm.p, opts(events, true), ac.signal).then(() => "resolved", (e: unknown) => e);
      // Let the escalation reach the hanging call, then interrupt it.
      for (let i = 0; i < 20 && vm.calls.length < ph.before.length; i++) await new Promise((r) => setImmediate(r));
      expect(vm.calls).toEqual(ph.before);
      ac.abort(); // a bare abort: its reason is a DOMException, which must come out as AbortError
      const err = await done;
      expect(err).toBeInstanceOf(AbortError);
      expect(vm.calls).toEqual(ph.before);
      expect([...vm.signals]).toEqual([ac.signal]);
    });
  }

  it("a request that fails because of the abort is the abort, not a warning", async () => {
    const ac = new AbortController();
    const vm = fakeVm({});
    vm.p.ask = async () => {
      ac.abort(new AbortError("interrupted"));
      throw new Error("VBoxManage was killed");
    };
    const { events, logs } = bus();
    const err = await escalatePowerOff(vm.p, opts(events, false), ac.signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(logs.filter((l) => l.startsWith("warn"))).toEqual([]);
    expect(vm.calls).toEqual(["wait 0"]);
  });
});
