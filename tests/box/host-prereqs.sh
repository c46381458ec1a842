#!/bin/bash
# host-prereqs.sh - install the host tools the fresh-box tests (tests/box) need.
#
# Idempotent and instant when everything is present: apt is only touched (update, then
# install) for what is missing. Run as root on a Debian host.
#
# --no-install-recommends matters: systemd-container recommends libnss-mymachines, whose
# postinst edits the host's /etc/nsswitch.conf.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "$(id -u)" -ne 0 ]; then
    echo "host-prereqs.sh: must run as root" >&2
    exit 1
fi

# package:command it provides
wanted=(debootstrap:debootstrap systemd-container:systemd-nspawn socat:socat zstd:zstd
        iproute2:ip util-linux:nsenter)
missing=()
for pair in "${wanted[@]}"; do
    command -v "${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "host-prereqs.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
