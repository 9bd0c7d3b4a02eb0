"""The workflow passes `snakemake --lint`; its rules are short, and the long-running
ones are sized for a cluster in one place.

Every rule that runs a script leaves a `log`, and every heavy one (torch, or long-
running) a `benchmark`. Rules declare no resources of their own: the SLURM profile's
set-threads and set-resources size the long-running rules, and only where the config
sizes each job (a setting's training, a checkpoint experiment) does the rule take its
resources from the config through common.smk's `config_resources`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import snakemake, succeeded
from workflow_checkout import ROOT, directive, has_directive, workflow_rules

MAX_RULE_LINES = 20
# Training, metrics and the other rules whose jobs run for long (or hold much memory).
CONFIG_SIZED = ("train", "checkpoint_metrics")
PROFILE_SIZED = ("gather_runs", "bic_sweep", "fit_hmm", "baselines", "sandbox_train")
SLURM_PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"


def slurm_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text())


def rules_by_name() -> dict:
    return {r.name: r for r in workflow_rules()}


def test_snakemake_lint_is_clean():
    succeeded(snakemake(ROOT, "--lint", cores=None, config="tests/configs/tiny.yaml", timeout=300))


def test_script_rules_log():
    rules = [r for r in workflow_rules() if directive(r.body, "script")]
    if not rules:
        pytest.skip("no rule runs a script yet")
    lacking = [f"{r.name} ({r.file.name})" for r in rules if not has_directive(r.body, "log")]
    assert not lacking, "rules without a log: " + ", ".join(lacking)


def test_rules_are_short():
    """From `rule` to the last line of the body: params go to helpers in common.smk."""
    long = [
        f"{r.name} ({r.file.name}): {n} lines"
        for r in workflow_rules()
        if (n := len(r.body.rstrip().split("\n"))) > MAX_RULE_LINES
    ]
    assert not long, f"rules over {MAX_RULE_LINES} lines:\n" + "\n".join(long)


def test_long_running_rules_are_sized_in_one_place():
    rules = rules_by_name()
    profile = slurm_profile()
    missing = [name for name in (*CONFIG_SIZED, *PROFILE_SIZED) if name not in rules]
    assert not missing, "no such rule: " + ", ".join(missing)
    lacking = []
    for name in CONFIG_SIZED:
        body = rules[name].body
        if "config_resources(" not in body or not has_directive(body, "threads"):
            lacking.append(f"{name}: no threads, or no resources from config_resources()")
    for name in PROFILE_SIZED:
        resources = profile.get("set-resources", {}).get(name) or {}
        absent = [key for key in ("mem_mb", "runtime") if key not in resources]
        absent += [] if name in profile.get("set-threads", {}) else ["threads"]
        if absent:
            lacking.append(f"{name}: no {', '.join(absent)} in {SLURM_PROFILE.name}")
    assert not lacking, f"long-running rules not sized ({SLURM_PROFILE.parent}):\n" + "\n".join(
        lacking
    )


def test_rules_declare_no_resources_of_their_own():
    """Resources come from the profiles, or for config-sized jobs from config_resources()."""
    own = [
        f"{r.name} ({r.file.name})"
        for r in workflow_rules()
        if has_directive(r.body, "resources") and "config_resources(" not in r.body
    ]
    assert not own, "rules with resources outside the profiles: " + ", ".join(own)


def test_profile_names_only_rules_that_exist():
    """A renamed rule would silently fall back to the default resources."""
    rules = rules_by_name()
    profile = slurm_profile()
    named = {
        f"{key}: {name}"
        for key in ("set-threads", "set-resources", "groups")
        for name in profile.get(key) or {}
        if name not in rules
    }
    assert not named, "the SLURM profile names unknown rules: " + ", ".join(sorted(named))


def is_heavy(rule) -> bool:
    """Runs torch (training, metrics, sandbox, data), or runs long."""
    conda = directive(rule.body, "conda") or ""
    return rule.name in (*CONFIG_SIZED, *PROFILE_SIZED) or conda.endswith("torch.yaml")


def test_heavy_rules_leave_a_benchmark():
    heavy = [r for r in workflow_rules() if directive(r.body, "script") and is_heavy(r)]
    lacking = [f"{r.name} ({r.file.name})" for r in heavy if not has_directive(r.body, "benchmark")]
    assert not lacking, "heavy rules without a benchmark: " + ", ".join(lacking)


def test_script_rules_carry_the_digest_of_their_own_script():
    """The `code` param (common.smk, script_code) reruns a job when the code it runs changes."""
    rules = [r for r in workflow_rules() if directive(r.body, "script")]
    wrong = []
    for rule in rules:
        script = Path(directive(rule.body, "script")).name
        if f'code=script_code("{script}")' not in rule.body:
            wrong.append(f"{rule.name} ({rule.file.name})")
    assert not wrong, "rules without code=script_code(<their script>): " + ", ".join(wrong)
