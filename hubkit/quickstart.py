"""The main job, end to end: local Hub → seeded datasets → a model published with a card → listed by its
card metadata → downloaded and reloaded with `transformers` → a seeded dataset loaded with `datasets`.

Every step goes through the same client code as against the real Hub: point `HF_ENDPOINT` at
https://huggingface.co and set `HF_TOKEN` to publish there instead.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .cards import TEMPLATES
from .hub import ensure_endpoint, get_api, push_folder
from .models import build_tiny_model

QUICKSTART_REPO = "quickstart-tiny-llama"


@dataclass
class QuickstartResult:
    endpoint: str
    repo_id: str
    commit: str
    listed: list[str]
    reloaded_equal: bool
    datasets: dict[str, str]


def render_card(repo_id: str, parameters: int) -> str:
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        license="apache-2.0", library_name="transformers", pipeline_tag="text-generation", language=["en"],
        tags=["hubkit", "hubkit-quickstart", "tiny-random"],
    )
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / "quickstart.md"), repo_id=repo_id, architecture="LlamaForCausalLM",
        parameters=parameters,
    )
    return str(card)


def run(namespace: str | None = None, seed_data: bool = True, console: Console | None = None) -> QuickstartResult:
    """Run the quickstart; returns what it published and checked.

    Example:
        >>> run().reloaded_equal
        True
    """
    console = console or Console()
    endpoint = ensure_endpoint()
    console.print(f"[bold]Hub endpoint[/bold] {endpoint}")
    api = get_api()
    user = api.whoami()["name"]
    namespace = namespace or user

    datasets: dict[str, str] = {}
    if seed_data:
        from .hub.seed import seed

        datasets = seed()

    repo_id = f"{namespace}/{QUICKSTART_REPO}"
    with console.status("Publishing a tiny model with its card"), tempfile.TemporaryDirectory() as tmp:
        params = build_tiny_model(Path(tmp))
        (Path(tmp) / "README.md").write_text(render_card(repo_id, params), encoding="utf-8")
        api.create_repo(repo_id, exist_ok=True)
        pushed = push_folder(repo_id, tmp, commit_message="Publish the quickstart model", api=api)
    console.print(f"Published [cyan]{repo_id}[/cyan] at {pushed.commit[:10]} "
                  f"({'new commit' if pushed.changed else 'unchanged, no commit'})")

    listed = [m.id for m in api.list_models(author=namespace, filter="hubkit-quickstart", cardData=True)]

    with console.status("Downloading and reloading the model"):
        import torch
        from huggingface_hub import snapshot_download
        from transformers import AutoModelForCausalLM

        local = snapshot_download(repo_id, token=api.token)
        remote_model = AutoModelForCausalLM.from_pretrained(repo_id, token=api.token)
        with tempfile.TemporaryDirectory() as tmp:
            build_tiny_model(Path(tmp))
            fresh = AutoModelForCausalLM.from_pretrained(tmp)
        equal = all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), remote_model.state_dict().values()))

    table = Table(title="hubkit quickstart")
    table.add_column("step")
    table.add_column("result")
    table.add_row("endpoint", endpoint)
    table.add_row("datasets seeded", f"{len(datasets)} ({', '.join(list(datasets)[:4])}{', …' if len(datasets) > 4 else ''})")
    table.add_row("model published", f"{repo_id} @ {pushed.commit[:10]}")
    table.add_row("listed by card tag", ", ".join(listed) or "—")
    table.add_row("downloaded to", str(Path(local).name))
    table.add_row("reloaded weights identical", "yes" if equal else "NO")
    if datasets:
        from datasets import load_dataset

        ds = load_dataset(datasets["gsm8k"], split="test", token=api.token)
        table.add_row("load_dataset(gsm8k, test)", f"{len(ds):,} rows")
    console.print(table)
    return QuickstartResult(endpoint, repo_id, pushed.commit, listed, equal, datasets)
