#!/usr/bin/env bash
# Sets up a fresh Debian machine for the testbed and runs it: installs qemu, ipvsadm, busybox and
# iproute2, fetches the VM kernel when this kernel has no IPVS, builds directord, runs the demo.
# Extra arguments go to `directord testbed` (try --list, --scenario NAME, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (or: sudo bash testbed/demo.sh)" >&2; exit 2; }
export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "demo.sh: Go 1.26 or newer is needed at /usr/local/go or on PATH" >&2; exit 2; }

pkgs=(qemu-system-x86 ipvsadm busybox-static iproute2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo.sh: installing ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "demo.sh: building directord" >&2
mkdir -p bin
go build -o bin/directord ./cmd/directord
if [ ! -e /proc/net/ip_vs ] && ! modprobe -q ip_vs 2>/dev/null; then
  echo "demo.sh: this kernel has no IPVS: preparing the VM kernel (first run downloads it)" >&2
  go run ./testbed/vm/cmd/vmprep >&2  # stdout is the demo's (one JSON object with --json)
fi
exec bin/directord testbed "$@"
