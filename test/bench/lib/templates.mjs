// The two equivalent templates the Packer benchmark builds: same guest, same VM shape, same cidata
// user, same provisioning, same trim before power-off, same qcow2 export. The power-off itself is
// each tool's own: Packer runs its shutdown_command (`poweroff`, every unit stopped), vmkiln its
// default shutdown.mode fast (`systemctl poweroff --force`, same clean unmount, no unit stop jobs);
// `--vmkiln-shutdown graceful` makes vmkiln power off exactly as Packer does. Pure functions: the bench writes their
// results to files; nothing here touches the system.

/** What both tools run in the guest, in this order (issue 7): write files, wait for cloud-init, 64 MiB scratch. */
export const WRITE_FILES = [
  "mkdir -p /etc/bench",
  "echo 'hello from the bench' > /etc/bench/greeting",
  "date -u +%Y-%m-%dT%H:%M:%SZ > /etc/bench/built-at",
];
// Random data, so the deleted blocks would land in the image unless they are trimmed (both tools trim).
export const SCRATCH_64M = ["dd if=/dev/urandom of=/var/tmp/scratch bs=1M count=64 status=none", "sync", "rm -f /var/tmp/scratch"];
export const CLOUD_INIT_WAIT = "cloud-init status --wait";
/** Packer's shutdown: what vmkiln's shutdown step runs with generalize {trim: true} (sync, fstrim, power off; see the top). */
export const PACKER_SHUTDOWN = "sudo -n sh -c 'sync; fstrim -av || true; poweroff'";

export const GUEST = { cpus: 2, memoryMiB: 1024, diskSize: "4G", diskSizeMiB: 4096, machine: "q35", username: "builder" };

/**
 * vmkiln template. Generalize does only what Packer's shutdown_command does (trim), so both tools do
 * the same work; vmkiln's other generalize defaults cost a few seconds more (pass defaults: true).
 */
export function vmkilnTemplate(o) {
  const generalize = o.defaults
    ? true
    : {
        // Every operation off but trim (the later ones default to on, keep_default_user to off).
        cloud_init: false, keep_default_user: true, build_user: false, passwd_backups: false, network: false, hostname: false, dhcp: false,
        machine_id: false, random_seed: false, ssh_host_keys: false, tmp: false, shell_history: false, package_cache: false, logs: false, trim: true,
      };
  return {
    name: o.name,
    source: { cloud_image: { path: o.image, checksum: "none", format: "qcow2" } },
    drivers: {
      qemu: {
        accelerator: o.accel,
        cpus: o.cpus ?? GUEST.cpus,
        memory: GUEST.memoryMiB,
        disk_size: GUEST.diskSize,
        machine: GUEST.machine,
        // Fixed, so the bench can watch the same port the tool waits on (none: vmkiln picks).
        ...(o.sshPort === undefined ? {} : { ssh_host_port: o.sshPort }),
      },
    },
    ssh: { username: GUEST.username, timeout: "30m" },
    provision: [
      { shell: { name: "write files", sudo: true, inline: WRITE_FILES } },
      { wait_cloud_init: {} },
      { shell: { name: "scratch 64 MiB", sudo: true, inline: SCRATCH_64M } },
    ],
    generalize,
    ...(o.shutdownMode ? { shutdown: { mode: o.shutdownMode } } : {}),
    output: { directory: o.outputDir, formats: o.formats ?? ["qcow2"], compression: o.compression },
  };
}

/**
 * Packer 1.6.6 JSON template (qemu builder). Notes on the options (checked against `packer validate`
 * of the Debian package and the builder's source):
 * - use_backing_file: a qcow2 overlay on the fixture, like vmkiln's default disk_mode: overlay. Packer
 *   1.6.6 runs `qemu-img create -b <image>` without -F, which QEMU >= 6.1 refuses ("Backing file
 *   specified without backing format"); qemu_img_args.create supplies `-F qcow2`.
 * - qemuargs: a "-drive" key replaces ALL of Packer's default drives (step_run.go applyUserOverrides),
 *   so the build disk is listed again (with Packer's own defaults: cache=writeback, discard, detect
 *   zeroes matching vmkiln's) next to the cidata seed; "-device" likewise replaces the NIC.
 * - disk_compression: `qemu-img convert -c`; zstd goes through qemu_img_args.convert, which Packer
 *   puts after -c.
 * - ssh_handshake_attempts: a refused login (cloud-init has not created the user yet) counts as a
 *   failed handshake; the default of 10 can end a slow TCG build early.
 */
export function packerTemplate(o) {
  const disk = `${o.outputDir}/${o.vmName}`;
  const convert = o.compression === "zstd" ? ["-o", "compression_type=zstd"] : [];
  return {
    builders: [
      {
        type: "qemu",
        vm_name: o.vmName,
        output_directory: o.outputDir,
        iso_url: o.image,
        iso_checksum: "none",
        disk_image: true,
        use_backing_file: true,
        disk_size: `${GUEST.diskSizeMiB}M`,
        format: "qcow2",
        disk_compression: o.compression !== "none",
        disk_interface: "virtio",
        disk_cache: o.diskCache,
        disk_discard: "unmap",
        disk_detect_zeroes: "unmap",
        qemu_img_args: { create: ["-F", "qcow2"], convert },
        accelerator: o.accel,
        machine_type: GUEST.machine,
        cpus: GUEST.cpus,
        memory: GUEST.memoryMiB,
        headless: true,
        boot_wait: "0s",
        qemuargs: [
          ["-cpu", o.accel === "kvm" ? "host" : "max"],
          ["-drive", `file=${disk},if=virtio,cache=${o.diskCache},discard=unmap,detect-zeroes=unmap,format=qcow2`],
          ["-drive", `file=${o.cidataIso},if=virtio,format=raw,readonly=on`],
          ["-device", "virtio-net,netdev=user.0"],
          ["-device", "virtio-rng-pci"],
          // Not a Packer default: the bench reads sshd's start from it (probe.mjs), as from vmkiln's.
          ["-serial", `file:${o.consoleLog}`],
        ],
        host_port_min: o.sshPort,
        host_port_max: o.sshPort,
        ssh_username: GUEST.username,
        ssh_private_key_file: o.privateKeyFile,
        ssh_timeout: "30m",
        ssh_handshake_attempts: 1000,
        shutdown_command: PACKER_SHUTDOWN,
        shutdown_timeout: "5m",
      },
    ],
    provisioners: [
      { type: "shell", execute_command: "chmod +x {{ .Path }}; sudo -n sh -c '{{ .Vars }} {{ .Path }}'", inline: WRITE_FILES },
      { type: "shell", inline: [CLOUD_INIT_WAIT] },
      { type: "shell", execute_command: "chmod +x {{ .Path }}; sudo -n sh -c '{{ .Vars }} {{ .Path }}'", inline: SCRATCH_64M },
    ],
  };
}
