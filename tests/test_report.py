"""Snakemake's report of the default target, built by the README's command.

The tiny config's whole default target is built in a copy of the workflow, then
``snakemake --report results/report.html``. The report must describe the workflow
(workflow/report/workflow.rst) and hold every file the rules mark with
``report(...)``: its caption (from the rule's caption file) and its content.
"""

from __future__ import annotations

import base64
import io
import json
import re
from urllib.parse import unquote

import docutils.core
import pytest
from conftest import one_thread, snakemake, succeeded
from workflow_checkout import ROOT, checkout, tiny_config

pytestmark = pytest.mark.slow


def words(rst: str, n: int = 8) -> str:
    """The first `n` words of a reStructuredText caption, as plain words."""
    return " ".join(re.sub(r"[*`_]", "", rst).split()[:n])


def captions_used_by_rules() -> set[str]:
    """Every caption file of workflow/report but the workflow's description.

    The rules name them through common.smk's caption(), mostly by a file's stem, so they
    are not all spelt out in the rule files; the tiny config builds every report item.
    """
    captions = (ROOT / "workflow" / "report").glob("*.rst")
    return {path.name for path in captions} - {"workflow.rst"}


def script_value(html: str, name: str):
    """The JSON value of `var <name> = ...;` in the report's script of that name."""
    script = name.replace("_", "-")
    pattern = rf'<script id="{script}">\s*var {name} = (.*?);\s*</script>'
    match = re.search(pattern, html, re.DOTALL)
    assert match, f"no {name} in the report"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    where = checkout(tmp_path_factory.mktemp("report") / "workflow", tiny_config())
    logs = []
    for args in (["--cores", "2"], ["--report", "results/report.html"]):
        done = succeeded(
            snakemake(where, *args, cores=None, config="test.yaml", env=one_thread(), timeout=1800)
        )
        logs.append(done.stdout + done.stderr)
    report_log = logs[-1]
    return where, (where / "results" / "report.html").read_text(), report_log


def test_report_log_has_no_caption_errors(report):
    *_, log = report
    # docutils reports caption problems as "(ERROR/3) ..." lines in the report's log.
    problems = re.findall(r".*\((?:WARNING|ERROR|SEVERE)/\d\).*|.*Undefined substitution.*", log)
    assert not problems, "\n".join(problems)


def test_report_describes_the_workflow(report):
    _, html, _ = report
    description = script_value(html, "workflow_desc")
    assert words((ROOT / "workflow" / "report" / "workflow.rst").read_text()) in " ".join(
        re.sub(r"<[^>]+>", " ", description).split()
    )


def test_report_has_every_captioned_file(report):
    where, html, _ = report
    results = script_value(html, "results")
    assert results, "the report holds no files"
    captions = {words(c) for c in (" ".join(r["caption"].split()) for r in results.values())}
    plain = {words(re.sub(r"<[^>]+>", " ", c)) for c in captions}
    for name in captions_used_by_rules():
        expected = words((ROOT / "workflow" / "report" / name).read_text())
        assert expected in plain, f"no file in the report has the caption {name}"
    for path, entry in results.items():
        assert entry["caption"].strip(), f"{path} has no caption"
        header, _, payload = entry["data_uri"].partition("base64,")
        content = base64.b64decode(unquote(payload)) if header else None
        assert content == (where / path).read_bytes(), f"{path}: the report's copy differs"


def test_report_groups_files_by_paper(report):
    _, html, _ = report
    categories = script_value(html, "categories")
    assert categories, "no categories"
    grouped = {f for subs in categories.values() for files in subs.values() for f in files}
    assert grouped == set(script_value(html, "results"))


@pytest.mark.parametrize("caption", sorted((ROOT / "workflow" / "report").glob("*.rst")), ids=str)
def test_caption_is_valid_restructuredtext(caption):
    problems = io.StringIO()
    docutils.core.publish_doctree(
        caption.read_text(), settings_overrides={"warning_stream": problems, "report_level": 2}
    )
    assert not problems.getvalue(), problems.getvalue()
