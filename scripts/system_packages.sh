#!/usr/bin/env bash
# The Debian packages that `make test` needs besides Python: bubblewrap isolates student kernels
# while grading; chromium and its driver open the built book in the browser test; slurm-wlm and
# munge run the single-node Slurm cluster of the Slurm tests (scripts/slurm/local_cluster.py).
# Installs the missing ones when it can (as root, or with sudo that needs no password); otherwise
# prints the one command that installs them and stops, before anything else runs.
# Daemons live in sbin folders, often outside a user's PATH: they are looked for there too
# (SBIN_DIRS; the tests set it empty to look on PATH only).
set -euo pipefail

sbin_dirs="${SBIN_DIRS-/usr/local/sbin:/usr/sbin:/sbin}"
have() { PATH="$PATH${sbin_dirs:+:$sbin_dirs}" command -v "$1" >/dev/null; }

need=()
have bwrap || need+=(bubblewrap)
have chromium || need+=(chromium)
have chromedriver || need+=(chromium-driver)
{ have slurmctld && have slurmd && have sbatch; } || need+=(slurm-wlm)
{ have munged && have mungekey; } || need+=(munge)
[ ${#need[@]} -eq 0 ] && exit 0

install="apt-get install -y ${need[*]}"
if ! command -v apt-get >/dev/null; then
    echo "error: the tests need ${need[*]} (Debian's package names); install them with this system's package manager, then run make test again." >&2
    exit 1
elif [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "error: the tests need the Debian packages ${need[*]}. Install them with" >&2
    echo "    sudo apt-get update && sudo $install" >&2
    echo "then run make test again." >&2
    exit 1
fi
echo "Installing the Debian packages the tests need: ${need[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
