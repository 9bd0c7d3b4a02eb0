"""The workflow passes `snakemake --lint`, and every heavy rule can run on a cluster.

Every rule that runs a script leaves a `log`. A heavy rule (one that declares
resources or runs torch) also says what it needs, `threads` and `resources` with
`mem_mb` and `runtime`, which the SLURM profile turns into `sbatch` requests, and
leaves a `benchmark`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_checkout import ROOT, directive, has_directive, workflow_rules

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def test_snakemake_lint_is_clean():
    done = subprocess.run(
        [SNAKEMAKE, "--lint", "--configfile", "tests/configs/tiny.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def is_heavy(rule) -> bool:
    """Declares resources, or runs torch (training, metrics, sandbox, data)."""
    conda = directive(rule.body, "conda") or ""
    return has_directive(rule.body, "resources") or conda.endswith("torch.yaml")


def test_script_rules_log():
    rules = [r for r in workflow_rules() if directive(r.body, "script")]
    if not rules:
        pytest.skip("no rule runs a script yet")
    lacking = [f"{r.name} ({r.file.name})" for r in rules if not has_directive(r.body, "log")]
    assert not lacking, "rules without a log: " + ", ".join(lacking)


def test_heavy_rules_declare_resources_and_benchmark():
    heavy = [r for r in workflow_rules() if directive(r.body, "script") and is_heavy(r)]
    if not heavy:
        pytest.skip("no heavy rule yet")
    lacking = []
    for rule in heavy:
        missing = [
            d for d in ("threads", "resources", "benchmark") if not has_directive(rule.body, d)
        ]
        missing += [
            r
            for r in ("mem_mb", "runtime")
            if not re.search(rf"^\s+{r}\s*=", rule.body, re.MULTILINE)
        ]
        if missing:
            lacking.append(f"{rule.name} ({rule.file.name}): no {', '.join(missing)}")
    assert not lacking, "\n".join(lacking)


def test_script_rules_carry_the_digest_of_their_own_script():
    """The `code` param (common.smk, script_code) reruns a job when the code it runs changes."""
    rules = [r for r in workflow_rules() if directive(r.body, "script")]
    wrong = []
    for rule in rules:
        script = Path(directive(rule.body, "script")).name
        if f'code=script_code("{script}")' not in rule.body:
            wrong.append(f"{rule.name} ({rule.file.name})")
    assert not wrong, "rules without code=script_code(<their script>): " + ", ".join(wrong)
