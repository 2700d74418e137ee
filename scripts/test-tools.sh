#!/usr/bin/env bash
# The system tools the tests need, installed before `npm test` runs (package.json's `pretest`).
#
#   socat          PTY pairs for the serial link and serial-disk tests
#   chromium       the visualizer's browser tests (driven by playwright-core; Playwright's own
#                  browser download does not work offline, Debian's Chromium does)
#   redis-server   the queued-campaign tests (BullMQ); the tests start and stop their own server
#   xmllint        JUnit XML validated against its schema (libxml2-utils)
#   udevadm        serialport lists serial ports through it (`mirrorlab devices`; package udev)
#
# Installs whatever is missing with apt-get when it can (root, or sudo without a password);
# otherwise stops with the exact command to run. Set MIRRORLAB_SKIP_TOOLS=1 to skip the check.
set -euo pipefail

if [[ "${MIRRORLAB_SKIP_TOOLS:-}" == "1" ]]; then
  exit 0
fi

# command:package pairs; the apt-get line below installs these packages (keep the two lists together)
tools=(socat:socat chromium:chromium redis-server:redis-server xmllint:libxml2-utils udevadm:udev)
missing=()
for pair in "${tools[@]}"; do
  cmd="${pair%%:*}"
  pkg="${pair#*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "test tools: installing ${missing[*]} (Debian packages) ..." >&2
if [[ "$(id -u)" == "0" ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "error: the tests need ${missing[*]}, and this user cannot install them. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the tests need ${missing[*]} and there is no apt-get here; install them with this system's package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
# All of them at once: apt-get leaves the ones already there as they are.
if ! { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends socat chromium redis-server libxml2-utils udev; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "error: apt-get could not install ${missing[*]}; run it by hand:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
for pair in "${tools[@]}"; do
  cmd="${pair%%:*}"
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: ${cmd} is still missing after apt-get install" >&2; exit 1; }
done
echo "test tools: ready" >&2
