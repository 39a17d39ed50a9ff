"""The README's three journeys — publish a sweep, browse the leaderboard, download for reanalysis — run as
written (read from the README), in order, on the embedded Hub of a fresh machine with no environment set."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from .conftest import ServingCommand

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def journeys() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- journey: (\w+) -->\n```bash\n(.*?)```", text, re.S)
    return {name: [line for line in block.splitlines() if line.strip()] for name, block in found}


def python_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"<!-- journey: python -->\n```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A checkout-shaped folder (its `scripts/`, and `../shared` beside it) and a fresh hubkit home."""
    tmp = tmp_path_factory.mktemp("journeys")
    work = tmp / "checkout"
    work.mkdir()
    (work / "scripts").symlink_to(REPO / "scripts")
    (tmp / "shared").symlink_to(SHARED)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp / "home"), HF_HOME=str(tmp / "hf"), COLUMNS="200")
    yield {"work": work, "env": env, "home": tmp / "home"}
    subprocess.run(["hubkit", "hub", "stop"], env=env, capture_output=True, timeout=60)


def _run(line: str, world) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-c", line], cwd=world["work"], env=world["env"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _hub(world):
    from huggingface_hub import HfApi

    # the commands' embedded Hub stopped with them: keep one up to look at what they published
    url = _run("hubkit hub start", world).stdout.split()[0]
    return url, HfApi(endpoint=url, token=(world["home"] / "hub" / "embedded-token").read_text().strip())


def test_the_readme_has_three_journeys():
    assert list(journeys()) == ["publish", "browse", "reanalyse"]


@pytest.mark.slow
def test_publish_a_sweep(world):
    outputs = [_run(line, world) for line in journeys()["publish"]]
    assert "hubkit/tiny-llama @" in outputs[0].stdout
    status = outputs[-1].stdout
    assert status.count("published") >= 3, status
    url, api = _hub(world)
    models = [m.id for m in api.list_models(author="hubkit", filter="hubkit-sft")]
    assert len(models) == 3
    for repo in models:
        files = set(api.list_repo_files(repo))
        assert {"README.md", "loss_curve.png", "hubkit_config.yaml"} <= files, files
        assert "model-index" in api.model_info(repo).card_data.to_dict()
    page = httpx.get(f"{url}/{models[0]}")  # the URL hubkit prints opens a page
    assert page.status_code == 200 and models[0] in page.text and "loss_curve.png" in page.text
    results = api.list_repo_files("hubkit/tiny-demo-results", repo_type="dataset")
    assert "data/results.parquet" in results


@pytest.mark.slow
def test_browse_the_leaderboard(world):
    importing, serving = journeys()["browse"]
    _run(importing, world)
    args = shlex.split(serving, comments=True)
    assert args[:3] == ["hubkit", "leaderboard", "serve"]
    served = ServingCommand(*args[1:], "--port", str(_port()), cwd=world["work"], env=world["env"])
    try:
        served.serving.wait(timeout=240)
        assert served.url, served.output
        assert httpx.get(served.url, timeout=60).status_code == 200
        assert httpx.get(served.url + "config", timeout=60).status_code == 200
        assert "Loaded hubkit/tiny-demo-results" in served.output
        served.proc.send_signal(signal.SIGINT)
        assert served.wait(timeout=60) == 0, served.output
    finally:
        served.proc.kill()
    assert "Leaderboard stopped." in served.output


def _port() -> int:
    from .conftest import _free_port

    return _free_port()


@pytest.mark.slow
def test_download_for_reanalysis(world):
    for line in journeys()["reanalyse"]:
        _run(line, world)
    work = world["work"]
    pulled = sorted(p for p in (work / "pulled").iterdir() if p.is_dir())
    assert len(pulled) == 3 and all((p / "pulled.json").is_file() for p in pulled)
    diff = pd.read_parquet(work / "diff" / "layerdiff.parquet")
    assert set(diff["model"]) == {json.loads((p / "pulled.json").read_text())["repo_id"] for p in pulled}
    assert (diff["rel_change"] > 0).any()
    ppl = pd.read_parquet(work / "ppl.parquet")
    assert ppl[["base_model", "dataset"]].values.tolist() == [["hubkit/tiny-llama", "lima"]]
    index = json.loads((work / "analysis" / "index.json").read_text())["analyses"]
    layer = next(a for a in index if a["name"] == "layer_correlation")
    assert layer["n"] >= 1 and "data size 64" in layer["condition"]
    props = next(a for a in index if a["name"] == "data_properties")
    assert props["n"] >= 1  # the perplexity table joined the sweep's runs
    _, api = _hub(world)
    assert "analysis/index.json" in api.list_repo_files("hubkit/tiny-demo-results", repo_type="dataset")


@pytest.mark.slow
def test_the_python_api_example(world):
    """The README's Python API block, as written, after the three journeys (same folder, same Hub), with another
    sweep's model in the same namespace (as after the quickstart): it works on the sweep it names, whatever else
    the user has published."""
    url, api = _hub(world)
    api.create_repo("hubkit/another-sweeps-model", exist_ok=True)
    api.upload_file(path_or_fileobj=b"---\ntags: [hubkit-sft]\nhubkit:\n  sweep: another\n---\n# not this sweep\n",
                    path_in_repo="README.md", repo_id="hubkit/another-sweeps-model")
    assert "hubkit/another-sweeps-model" in [m.id for m in api.list_models(author="hubkit", filter="hubkit-sft")]
    proc = subprocess.run([sys.executable, "-c", python_example()], cwd=world["work"], env=world["env"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "lima: perplexity" in out and "rel_change" in out and "cosine" in out
    assert "{'mmlu':" in out and "ci_low" in out


# The commands the journeys above do not run, each on its happy path in the same fresh world (no HF_ENDPOINT):
# together with the journeys and the quickstart's own test, every command of the tree.
OTHERS = [
    "hubkit hub start",
    "hubkit hub status",
    "hubkit data list",
    "hubkit train model=hubkit/tiny-llama dataset=lima data_size=16 epochs=1 batch_size=8 max_length=128 "
    "logging_steps=1 output_dir=runs --no-progress",
    "hubkit eval runs/* --suite mmlu --limit 2 --no-progress",
    "hubkit publish runs/*",
    "hubkit space deploy --results hubkit/tiny-demo-results --repo-id hubkit/tiny-demo-board",
    "hubkit data properties --datasets lima --benchmarks mmlu --size 4 -o props.parquet --no-progress",
    "hubkit hub add-user bob --root \"$HUBKIT_HOME/hub\"",
    "hubkit hub revoke bob --root \"$HUBKIT_HOME/hub\"",
    "hubkit hub gc --dry-run",
]
ELSEWHERE = {("quickstart",): "tests/test_quickstart.py", ("hub", "serve"): "tests/test_cli.py (serve on a busy "
             "port) and every test's Hub fixture", ("hub", "stop"): "the fixtures' teardown",
             ("judge", "serve"): "tests/eval/test_judge.py (a process that `hubkit eval --suite judge` reaches)"}


@pytest.mark.slow
def test_every_other_command_on_the_embedded_hub(world):
    import typer

    from hubkit.cli.main import app

    outputs = {line: _run(line, world).stdout for line in OTHERS}
    assert "embedded Hub" in outputs["hubkit hub status"]
    assert "Results → hubkit/hubkit-results" in " ".join(outputs["hubkit publish runs/*"].split())
    _, api = _hub(world)
    assert api.repo_exists("hubkit/tiny-demo-board", repo_type="space")
    assert pd.read_parquet(world["work"] / "props.parquet")["dataset"].tolist() == ["lima"]

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        return [p for name, sub in subs.items() for p in walk(sub, (*path, name))] if subs else [path]

    ran = {tuple(shlex.split(line, comments=True)[1:3]) for lines in journeys().values() for line in lines} | {
        tuple(shlex.split(line, comments=True)[1:3]) for line in OTHERS}
    ran |= {(p[0],) for p in ran}
    missing = [p for p in walk(typer.main.get_command(app), ()) if p not in ran and p not in ELSEWHERE]
    assert not missing, f"commands no journey or test runs on the embedded Hub: {missing}"
