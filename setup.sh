#!/usr/bin/env bash
# Install trainmap into ./.venv, with the system programs it needs where this user can.
#   ./setup.sh          the workflow: Python packages + Graphviz
#   ./setup.sh --test   also what the tests drive: Chromium + ChromeDriver (browser tests),
#                       SLURM + munge (the cluster test starts its own single-node SLURM)
set -euo pipefail
cd "$(dirname "$0")"

want_tests=false
[[ "${1:-}" == "--test" ]] && want_tests=true

system_packages=(graphviz)
$want_tests && system_packages+=(chromium chromium-driver slurmctld slurmd slurm-client munge)

missing=()
for package in "${system_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: please install ${missing[*]} (Debian/Ubuntu package names) or use environment.yml with conda" >&2
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if $want_tests; then
    .venv/bin/python -m pip install -q -e ".[test]"
else
    .venv/bin/python -m pip install -q -e .
fi
echo "setup: done (.venv ready)"
