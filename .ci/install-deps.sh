#!/usr/bin/env bash
# Host packages vmkiln and its tests need, from Debian 12's archive. Run as root (or with sudo).
#   run time:   qemu-system-x86 qemu-utils ovmf (EFI guests)
#   fixture:    debootstrap extlinux syslinux-common fdisk e2fsprogs (fixtures/guest/build.sh)
#   tests only: genisoimage (isoinfo) xorriso mtools dosfstools (independent readers of our ISO/FAT
#               writers), openssh-client, ansible-core, golang-go + govmomi (vcsim harness),
#               libguestfs-tools (guestfish: generalized images are read offline, test/helpers/guestfs.ts;
#               and the kernel's isofs reads our ISO in its appliance where the host kernel has none)
set -euo pipefail
pkgs=(
  qemu-system-x86 qemu-utils ovmf
  debootstrap extlinux syslinux-common syslinux-utils isolinux fdisk e2fsprogs util-linux
  genisoimage xorriso mtools dosfstools openssh-client ca-certificates procps
  ansible-core
  libguestfs-tools # offline checks of generalized images (test/helpers/guestfs.ts); iso-kernel.test.ts without host isofs
  golang-go golang-github-vmware-govmomi-dev # vSphere tests: the vcsim harness (test/doubles/vcsim), built in GOPATH mode
  debian-installer-12-netboot-amd64 # ISO-install tests: kernel + initrd for a netboot ISO (test/helpers/netboot-iso.ts)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
