#!/usr/bin/env bash
# Post-deploy script of every environment in envs/ (<env>.post-deploy.sh links here).
# Snakemake runs it once, inside a newly created environment, from the workflow's
# working directory (the repository root): it installs trainmap itself; the
# environment file brings its dependencies.
set -euo pipefail
python -m pip install --no-deps --editable .
