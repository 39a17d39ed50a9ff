"""The `hubkit` command line: real subprocesses, real servers, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi


def hubkit(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "hubkit", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def _assert_one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_is_fast_and_lists_nouns():
    proc = hubkit("--help")
    assert proc.returncode == 0 and "hub" in proc.stdout and "quickstart" in proc.stdout
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "hubkit", "--help"], capture_output=True, text=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "typer" in imported  # the parse worked
    heavy = {"torch", "transformers", "huggingface_hub", "gradio", "peft", "evaluate", "datasets", "starlette"}
    assert imported & heavy == set()


def test_add_user_prints_a_token_that_works_while_the_server_runs(hub):
    proc = hubkit("hub", "add-user", "dave", "--root", str(hub.root), "--org", "acme")
    assert proc.returncode == 0
    token = proc.stdout.strip()
    assert token.startswith("hf_") and len(proc.stdout.strip().splitlines()) == 1
    me = HfApi(endpoint=hub.url, token=token).whoami()
    assert me["name"] == "dave" and [o["name"] for o in me["orgs"]] == ["acme"]
    assert token not in (hub.root / "users.json").read_text()  # only its hash is stored


def test_add_user_bad_name(tmp_path):
    _assert_one_line_error(hubkit("hub", "add-user", "bad name", "--root", str(tmp_path)), "Invalid user name")


def test_seed_unknown_dataset(hub):
    _assert_one_line_error(hubkit("hub", "seed", "no-such-set"), "unknown dataset 'no-such-set'")


def test_seed_cli(hub):
    proc = hubkit("hub", "seed", "math500", "--namespace", "hubkit-data",
                  env={"HF_TOKEN": hub.tokens["hubkit"]})
    assert proc.returncode == 0, proc.stderr
    assert "hubkit-data/math500" in proc.stdout
    assert HfApi(endpoint=hub.url).dataset_info("hubkit-data/math500").card_data["license"] == "mit"


def test_unreachable_hub_is_one_line(tmp_path):
    """Nothing listens at HF_ENDPOINT: every command that needs the Hub says so in one line, without the
    client's retries (about 25 s of 'Retrying in …' lines before); the timeout bounds each command."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HUBKIT_HOME": str(tmp_path), "HF_TOKEN": "hf_x"}
    csv_file = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "massive_sft_results" /
                   "evaluation_result.csv")
    for args in (["quickstart", "--no-serve"], ["analyze", "--results", "alice/x", "-o", str(tmp_path / "a")],
                 ["leaderboard", "serve", "--results", "alice/x"], ["pull", "alice/x", "-o", str(tmp_path / "p")],
                 ["import-results", csv_file, "--format", "massive-sft-csv", "--repo-id", "alice/x"]):
        proc = hubkit(*args, env=env, timeout=20)
        _assert_one_line_error(proc, "cannot reach the Hub at http://127.0.0.1:9")
        assert "Retrying" not in proc.stderr


def test_bare_hubkit_prints_help_and_version_prints_the_version():
    from hubkit import __version__

    bare = hubkit()
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: hubkit") and "quickstart" in bare.stdout
    assert bare.stderr == ""
    group = hubkit("hub")
    assert group.returncode == 0 and group.stdout.startswith("Usage: hubkit hub")
    version = hubkit("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"hubkit {__version__}"


def test_usage_and_input_errors_are_one_line_naming_the_cause(tmp_path):
    _assert_one_line_error(hubkit("eval", "alice/x", "--limit", "-3"), "'--limit'")
    _assert_one_line_error(hubkit("eval", "alice/x", "--limit", "-3"), "see `hubkit eval --help`")
    _assert_one_line_error(hubkit("bogus"), "No such command 'bogus'")
    _assert_one_line_error(hubkit("layerdiff", "x/y"), "Missing option '--base'")
    missing = str(tmp_path / "no-such-folder")
    _assert_one_line_error(hubkit("layerdiff", "--base", missing, missing + "-too"),
                           f"model {missing}: local folder not found, and not a Hub repo id")


def test_a_bad_token_is_one_line(hub, tmp_path):
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_not_a_token", "HF_HOME": str(tmp_path)}
    proc = hubkit("pull", "alice/x", "-o", str(tmp_path / "p"), env=env, timeout=60)
    _assert_one_line_error(proc, "rejected the token (401 Unauthorized): set HF_TOKEN")
    assert "hf_not_a_token" not in proc.stderr


def test_shipped_recipes_are_listed_and_run_by_name(tmp_path):
    from hubkit.resources import recipes

    listed = hubkit("sweep", "--recipes")
    assert listed.returncode == 0, listed.stderr
    assert set(recipes()) >= {"tiny-demo", "cpu-demo", "quickstart", "study-main-grid"}
    for name, summary in recipes().items():
        assert name in listed.stdout and summary and summary in listed.stdout
    env = {"HUBKIT_HOME": str(tmp_path)}
    by_name = hubkit("sweep", "tiny-demo", "--dry-run", env=env)
    by_path = hubkit("sweep", "scripts/recipes/tiny-demo.yaml", "--dry-run", env=env)
    assert by_name.returncode == 0 and by_name.stdout == by_path.stdout and "sweep tiny-demo: 9 runs" in by_name.stdout
    assert hubkit("sweep", "plan", "study-main-grid", env=env).returncode == 0
    _assert_one_line_error(hubkit("sweep", "no-such-recipe", env=env),
                           "no sweep file no-such-recipe and no shipped recipe of that name (shipped: cpu-demo")


def test_a_busy_port_is_named_before_anything_loads(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing is loaded: the port is checked first
        _assert_one_line_error(hubkit("leaderboard", "serve", "--results", "alice/x", "--port", port, env=env,
                                      timeout=30), f"port {port} on 127.0.0.1 is not free")
        _assert_one_line_error(hubkit("leaderboard", "serve", "--results", "alice/x", "--port", port, env=env,
                                      timeout=30), "choose another with --port")
        # the quickstart checks its leaderboard's port before the job, not after it
        _assert_one_line_error(hubkit("quickstart", "--port", port, env={**env, "HUBKIT_HOME": str(tmp_path)},
                                      timeout=30), f"port {port} on 127.0.0.1 is not free")


def test_serve_on_a_busy_port(hub, tmp_path):
    port = hub.url.rsplit(":", 1)[1]
    _assert_one_line_error(hubkit("hub", "serve", "--root", str(tmp_path), "--port", port, timeout=60), "cannot serve")


@pytest.mark.slow
def test_commands_settle_the_embedded_hub_at_entry_with_no_endpoint_set(tmp_path):
    """With no HF_ENDPOINT, the commands that import huggingface_hub on their way (leaderboard, layerdiff,
    analyze --results) reach the embedded Hub instead of failing on the endpoint; help starts nothing."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"))
    try:
        helped = subprocess.run([sys.executable, "-m", "hubkit", "analyze", "--help"], capture_output=True,
                                text=True, env=env, timeout=120)
        assert helped.returncode == 0 and not (tmp_path / "home" / "hub").exists()
        for args, answer in ((["analyze", "--results", "hubkit/none-results", "-o", str(tmp_path / "out")],
                              "results dataset hubkit/none-results not found"),
                             (["leaderboard", "serve", "--results", "hubkit/none-results"], "no results"),
                             (["layerdiff", "hubkit/a", "--base", "hubkit/b"], "model hubkit/b")):
            proc = subprocess.run([sys.executable, "-m", "hubkit", *args], capture_output=True, text=True, env=env,
                                  timeout=300)
            _assert_one_line_error(proc, answer)
            assert "imported with endpoint" not in proc.stderr
    finally:
        subprocess.run([sys.executable, "-m", "hubkit", "hub", "stop"], env=env, capture_output=True, timeout=60)


def test_hub_status_fails_when_the_endpoint_does_not_answer(hub):
    down = hubkit("hub", "status", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert down.returncode == 1 and "not answering" in down.stdout
    up = hubkit("hub", "status", env={"HF_ENDPOINT": hub.url})
    assert up.returncode == 0 and "(from HF_ENDPOINT, answering)" in up.stdout


_PRIVATE_LOADS = '''
import json, sys, tempfile
from pathlib import Path
from hubkit.hub import ensure_endpoint, get_api, push_folder
ensure_endpoint()
api = get_api()
user = api.whoami()["name"]
folder = Path(tempfile.mkdtemp())
(folder / "train.jsonl").write_text("".join(json.dumps({"text": f"private text {i}"}) + "\\n" for i in range(3)))
api.create_repo(f"{user}/private-texts", repo_type="dataset", private=True, exist_ok=True)
push_folder(f"{user}/private-texts", folder, repo_type="dataset", api=api)
api.create_repo(f"{user}/private-model", private=True, exist_ok=True)
push_folder(f"{user}/private-model", sys.argv[1], api=api)
from hubkit.analysis.perplexity import perplexity
from hubkit.eval.lm import LM
result = perplexity(f"{user}/private-model", f"{user}/private-texts", mode="full", progress=False, use_cache=False)
print("scored", result.documents, type(LM.load(f"{user}/private-model").model).__name__)
'''


@pytest.mark.slow
def test_private_repos_load_through_transformers_and_datasets_on_the_embedded_hub(tmp_path, tiny_model):
    """With no HF_TOKEN, `datasets` and `transformers` get the embedded Hub's token as `HfApi` does, so a
    private model and a private dataset load (before, both were read anonymously and not found)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"))
    try:
        proc = subprocess.run([sys.executable, "-c", _PRIVATE_LOADS, str(tiny_model)], capture_output=True, text=True,
                              env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "scored 3 LlamaForCausalLM" in proc.stdout
        url = subprocess.run([sys.executable, "-m", "hubkit", "hub", "start"], env=env, capture_output=True,
                             text=True, timeout=120).stdout.split()[0]
        anonymous = subprocess.run([sys.executable, "-c", "import datasets, sys; datasets.load_dataset(sys.argv[1])",
                                    "hubkit/private-texts"], capture_output=True, text=True,
                                   env={**env, "HF_HOME": str(tmp_path / "hf-anonymous"), "HF_ENDPOINT": url}, timeout=300)
        assert anonymous.returncode != 0  # the repo is private indeed
    finally:
        subprocess.run([sys.executable, "-m", "hubkit", "hub", "stop"], env=env, capture_output=True, timeout=60)


@pytest.mark.slow
def test_every_command_help_shows_examples_and_flags_as_flags():
    """`--help` of every command (walked from the command tree, so a new one is covered) has an Examples
    section whose lines are whole commands, and boolean options read as flags (`--json`, not `--json <bool>`)."""
    import typer

    from hubkit.cli.main import app

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield path

    commands = list(walk(typer.main.get_command(app), []))
    assert len(commands) >= 20
    for path in commands:
        out = hubkit(*path, "--help", env={"HF_ENDPOINT": "http://127.0.0.1:9"}, timeout=60).stdout
        assert "Examples:" in out, path
        examples = out.split("Examples:")[1].split("\nArguments:")[0].split("\nOptions:")[0]
        lines = [line.strip() for line in examples.splitlines() if line.strip()]
        assert lines and all(line.startswith(("hubkit ", "HF_ENDPOINT=")) for line in lines), (path, lines)
        assert "<bool>" not in out, path
