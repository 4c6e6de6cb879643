#!/usr/bin/env bash
# Host tools the test suites need, installed with apt-get when one is missing (silent when all exist):
#   debootstrap     builds the test images' Debian base
#   ssh, autossh    run the generated connect script
#   lsof, ss, netstat  the three ways that script names who holds a local port
# Used by `make test`, `make test-images` and .ci/run. Needs root or sudo only when it installs.
set -euo pipefail

# command -> Debian package that provides it
tools=(
  "debootstrap:debootstrap"
  "ssh:openssh-client"
  "autossh:autossh"
  "lsof:lsof"
  "ss:iproute2"
  "netstat:net-tools"
)

# debootstrap lives in /usr/sbin, which is not on every user's PATH
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

need=()
for entry in "${tools[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || need+=("${entry#*:}")
done
((${#need[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing host tools for the tests: ${need[*]}" >&2
  echo "  fix: install these packages (or your distribution's equivalents), then run the command again" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "error: missing host tools for the tests: ${need[*]}, and no sudo to install them" >&2
    echo "  fix: as root, run: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "installing host tools for the tests: ${need[*]}" >&2
${sudo[@]+"${sudo[@]}"} apt-get update -qq
${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
