#!/usr/bin/env bash
# Installs the Debian packages diffusiond builds against (run as root, or it uses sudo).
# Used by the README quick start, the Makefile and .ci/run.
#   --slurm   also what `make slurm-check` needs: slurm-wlm, munge and jq (tools/slurm/)
set -euo pipefail
packages=(pkg-config libyaml-dev libpng-dev libturbojpeg0-dev libinotifytools0-dev libopenblas-dev mandoc systemd)
if [ "${1:-}" = "--slurm" ]; then
    packages+=(slurm-wlm munge jq)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
