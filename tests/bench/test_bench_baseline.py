"""``--baseline REF``: aimw at a git revision, from this repository's real history, as one more
target named ``aimw@<commit>``: the ref checked before anything starts, the revision's
src/ and recipes/ extracted, its aimw shadowing the editable install, its row in the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.baseline import (
    Baseline,
    BaselineError,
    baseline_env,
    check_baseline_imports,
    extract_baseline,
    resolve_baseline,
)
from bench.cli import options_from, parser
from bench.report import render
from bench.runner import Run, RunOptions
from bench.targets import RunContext, baseline_target
from tests.bench.sample_results import measurement, results
from tests.shared_data import REPO


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def previous() -> Baseline:
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD~1"], cwd=REPO, capture_output=True).returncode:
        pytest.skip("this checkout has no HEAD~1 (shallow clone)")
    return resolve_baseline("HEAD~1", REPO)


@pytest.fixture(scope="module")
def extracted(previous: Baseline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_baseline(previous, REPO, tmp_path_factory.mktemp("raw"))


def test_a_ref_resolves_to_its_commit_and_names_the_target_by_its_short_hash(previous):
    assert previous.commit == git("rev-parse", "HEAD~1") and previous.short == git("rev-parse", "--short", "HEAD~1")
    assert previous.name == f"aimw@{previous.short}"
    assert "(`HEAD~1`)" in previous.summary
    assert "(`" not in resolve_baseline(previous.short, REPO).summary  # a hash is not repeated


@pytest.mark.parametrize("ref", ["no-such-branch", "HEAD~100000", "-n", ""])
def test_an_unknown_ref_is_refused(ref):
    with pytest.raises(BaselineError, match="git revision"):
        resolve_baseline(ref, REPO)


def test_a_revision_without_the_recipe_is_refused(tmp_path):
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "README").write_text("no aimw here\n")
    git("add", "README", cwd=tmp_path)
    git("-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "empty", cwd=tmp_path)
    with pytest.raises(BaselineError, match=r"has no src/aimw/__init__\.py, recipes/huggingface\.py"):
        resolve_baseline("HEAD", tmp_path)


def test_the_command_line_refuses_an_unknown_ref_before_anything_starts(capsys):
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(["--baseline", "no-such-branch"])
    assert stopped.value.code == 2
    assert "argument --baseline: unknown git revision 'no-such-branch'" in capsys.readouterr().err


def test_the_baseline_target_comes_right_after_aimw(previous):
    def targets(*argv: str) -> list[str]:
        return options_from(parser().parse_args(list(argv))).targets

    in_order = ["direct", "aimw", previous.name, "passthrough"]
    assert targets("--targets", "direct,aimw,passthrough", "--baseline", "HEAD~1") == in_order
    assert targets("--targets", "direct", "--baseline", "HEAD~1") == ["direct", previous.name]
    assert options_from(parser().parse_args(["--baseline", "HEAD~1"])).baseline == previous


def test_without_a_baseline_the_run_is_unchanged():
    options = options_from(parser().parse_args(["--targets", "direct,aimw"]))
    assert options.targets == ["direct", "aimw"] and options.baseline is None


def test_the_extraction_holds_the_revisions_src_and_recipes_only(previous, extracted):
    assert extracted.name == f"baseline-{previous.short}"
    assert sorted(path.name for path in extracted.iterdir()) == ["recipes", "src"]
    for path in ("src/aimw/__init__.py", "recipes/huggingface.py"):
        committed = subprocess.run(["git", "show", f"{previous.commit}:{path}"], cwd=REPO, capture_output=True)
        assert (extracted / path).read_bytes() == committed.stdout
    files = {str(path.relative_to(extracted)) for path in extracted.rglob("*") if path.is_file()}
    assert files == set(git("ls-tree", "-r", "--name-only", previous.commit, "src", "recipes").splitlines())


def test_the_baselines_aimw_shadows_the_editable_install(extracted, tmp_path):
    # the recipe's app built as the server builds it; every aimw and recipes module loaded must be the revision's
    probe = (
        "import sys, recipes.huggingface\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.partition('.')[0] in ('aimw', 'recipes') and getattr(module, '__file__', None):\n"
        "        print(module.__file__)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HUGGINGFACE_API_TOKEN": "hf_test", "AIMW_LOG_PATH": str(tmp_path / "aimw.log"),
           **baseline_env(extracted)}  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=extracted, env=env, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    files = loaded.stdout.splitlines()
    assert str(extracted / "src/aimw/__init__.py") in files and str(extracted / "recipes/huggingface.py") in files
    assert all(Path(path).is_relative_to(extracted) for path in files), files
    check_baseline_imports(sys.executable, extracted)


def test_a_baseline_that_would_import_the_working_tree_fails_loudly(extracted, tmp_path):
    recipes_only = tmp_path / "baseline-recipes-only"
    shutil.copytree(extracted / "recipes", recipes_only / "recipes")
    with pytest.raises(BaselineError, match=r"imports .*/src/aimw/__init__.py, not the baseline's code"):
        check_baseline_imports(sys.executable, recipes_only)


def test_the_baseline_server_runs_from_its_extraction(previous, extracted, tmp_path):
    context = RunContext(python=sys.executable, raw_dir=tmp_path, upstream_url="http://127.0.0.1:1", chunks=5)
    spec = baseline_target(previous, extracted).build(context, 8000, 2, f"stream-c32.{previous.name}")
    assert spec.name == previous.name and spec.cwd == extracted
    assert spec.env["PYTHONPATH"] == f"{extracted / 'src'}:{extracted}"
    assert spec.env["AIMW_LOG_PATH"] == str(tmp_path / f"stream-c32.{previous.name}.aimw.log")
    assert "recipes.huggingface:app" in spec.argv and spec.argv[spec.argv.index("--workers") + 1] == "2"


def test_the_report_compares_aimw_with_its_baseline():
    baseline = Baseline("HEAD~1", "abc1234" + "0" * 33, "abc1234")
    data = results(
        [measurement("nonstream-c32", "aimw", 1000),
         measurement("nonstream-c32", baseline.name, 800, server_rss_peak_bytes=62 * 1024 * 1024)],
        ["nonstream-c32"], ["aimw", baseline.name],
    )  # fmt: skip
    data["options"]["baseline"] = {"ref": baseline.ref, "commit": baseline.commit, "short": baseline.short}
    report = render(data)
    assert "## aimw against aimw@abc1234" in report and "(`HEAD~1`)" in report
    assert "| scenario | req/s aimw / aimw@abc1234 | CPU per req aimw@abc1234 / aimw |" in report
    # req/s 1000/800, CPU per request 1.25/1 ms, p50 1 − 1.25 ms, first byte 0.5 − 0.625 ms, RSS peak 60 − 62 MB
    assert "| nonstream-c32 | 1.25× | 1.25× | -0.25 | -0.12 | -2.00 |" in report
    assert "**aimw**: Hypercorn + recipes.huggingface:app (the working tree); **aimw@abc1234**: " in report
    assert "| aimw | 1,000.0 |" in report and "| aimw@abc1234 | 800.0 |" in report
    assert "aimw@" not in render(results([measurement("nonstream-c32", "aimw", 1000)], ["nonstream-c32"], ["aimw"]))


def test_a_run_measures_the_baseline_next_to_aimw(tmp_path):
    head = resolve_baseline("HEAD", REPO)  # HEAD: a revision this virtualenv's packages surely serve
    options = RunOptions(
        targets=["aimw", head.name], scenarios=["stream-c32"], duration=0.3, warmup=0.2, chunks=5,
        validate_every=1, output_dir=tmp_path, chart=False, loop="asyncio", baseline=head,
    )  # fmt: skip
    run = Run(options)
    measurements = run.execute()["measurements"]
    assert [record["target"] for record in measurements] == ["aimw", head.name]
    for record in measurements:
        assert "failed" not in record, record.get("failed")
        assert record["validated"] > 0 and (record["invalid"], record["error_counts"]) == (0, {}), record["label"]
    [measured] = [record for record in measurements if record["target"] == head.name]
    assert f"PYTHONPATH={run.raw_dir / f'baseline-{head.short}' / 'src'}" in measured["command"]
    log = run.raw_dir / f"stream-c32.{head.name}.aimw.log"
    assert json.loads(log.read_text().splitlines()[0])
