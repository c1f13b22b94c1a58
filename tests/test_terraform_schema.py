"""terraform/ checked against the providers' own schemas, offline.

The schemas come from the prebuilt CDK Terrain bindings on PyPI (cdktn-provider-google 20.0.0
wraps hashicorp/google 7.43.0), installed into .venv-cdktn by scripts/install-tf-tools.sh and
read by scripts/tf_schema_check.py. Where the bindings could not be installed, these tests skip
and say so.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TF_DIR = REPO / "terraform"
sys.path.insert(0, str(REPO / "scripts"))

import tf_schema_check as schema_check  # noqa: E402


@pytest.fixture(scope="module")
def schemas():
    loaded = schema_check.load_all()
    missing = [schema_check.PACKAGES[name] for name, schema in loaded.items() if schema is None]
    if missing:
        pytest.skip(f"provider bindings not installed in {schema_check.VENV} ({', '.join(missing)}): "
                    "run scripts/install-tf-tools.sh (it needs PyPI)")
    return loaded


def _blocks_in(tf_dir: Path) -> int:
    """How many resource and data blocks the .tf files hold, counted from the text."""
    return sum(len(re.findall(r'^(resource|data) "', p.read_text(), re.M)) for p in tf_dir.glob("*.tf"))


def test_schemas_are_the_provider_versions_that_versions_tf_pins(schemas):
    pinned = dict(re.findall(r'(\w+) = \{\s*source\s*= "hashicorp/\w+"\s*version\s*= "~> ([\d.]+)"',
                             (TF_DIR / "versions.tf").read_text()))
    assert pinned == {name: schema.version for name, schema in schemas.items()}, pinned
    # The bindings are read for real: a few well-known facts of the google provider.
    google = schemas["google"]
    assert len(google.resources) > 1000 and len(google.data_sources) > 300
    policy = google.resources["google_monitoring_alert_policy"]
    assert policy.arguments["display_name"] is True and policy.arguments["project"] is False
    assert policy.blocks["conditions"].required and not policy.blocks["conditions"].single
    assert policy.blocks["documentation"].single
    assert "condition_absent" in policy.blocks["conditions"].block.blocks
    assert "create_duration" in schemas["time"].resources["time_sleep"].arguments


def test_every_resource_and_data_block_matches_its_provider_schema(schemas):
    result = schema_check.check_directory(TF_DIR, schemas)
    print(f"schema check: {len(result.checked)} blocks checked")
    assert result.ok, "terraform/ does not match the provider schemas:\n" + "\n".join(map(str, result.problems))
    assert not result.unchecked, result.unchecked
    assert len(result.checked) == _blocks_in(TF_DIR) >= 20


def _planted(tmp_path: Path, file: str, old: str, new: str) -> Path:
    copy = tmp_path / "terraform"
    if not copy.exists():
        shutil.copytree(TF_DIR, copy, ignore=shutil.ignore_patterns(".terraform", "build", "*.tfstate*"))
    path = copy / file
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))
    return copy


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        # a misspelt argument
        ("scheduler.tf", "  attempt_deadline = ", "  attempt_dedline = ",
         r"scheduler\.tf: google_cloud_scheduler_job\.sync: unknown argument 'attempt_dedline' "
         r"\(did you mean 'attempt_deadline'\?\)"),
        # a required argument removed
        ("monitoring.tf", '  combiner              = "OR"\n', "",
         r"monitoring\.tf: google_monitoring_alert_policy\.no_healthy_run: missing required argument 'combiner'"),
        # a wrong nested block
        ("monitoring.tf", "    condition_absent {", "    condition_absence {",
         r"google_monitoring_alert_policy\.no_healthy_run\.conditions: unknown block 'condition_absence' "
         r"\(did you mean 'condition_absent'\?\)"),
        # a required argument of a nested block removed
        ("monitoring.tf", '      duration = "${local.watch_seconds}s"\n', "",
         r"no_healthy_run\.conditions\.condition_absent: missing required argument 'duration'"),
        # a block written as an argument
        ("scheduler.tf", "  retry_config {", "  retry_config = {",
         r"google_cloud_scheduler_job\.sync: 'retry_config' is a block, not an argument"),
        # a misspelt resource type
        ("monitoring.tf", 'resource "google_logging_metric" "runs"', 'resource "google_logging_metrics" "runs"',
         r"google 7\.43\.0 has no resource 'google_logging_metrics'"),
        # a misspelt argument of the time provider
        ("function.tf", '  create_duration = "60s"', '  create_durations = "60s"',
         r"time_sleep\.iam_propagation: unknown argument 'create_durations'"),
    ],
    ids=["misspelt-argument", "missing-required", "wrong-nested-block", "nested-missing-required", "block-as-argument", "unknown-type",
         "time-provider"],
)
def test_the_schema_check_finds_a_planted_error(schemas, tmp_path, file, old, new, expected):
    clean = schema_check.check_directory(_planted(tmp_path, file, "\n", "\n"), schemas)
    assert clean.ok, clean.problems
    copy = _planted(tmp_path, file, old, new)
    result = schema_check.check_directory(copy, schemas)
    found = [str(p) for p in result.problems]
    assert any(re.search(expected, line) for line in found), found
    assert len(found) == 1, f"one planted error, one problem expected: {found}"
