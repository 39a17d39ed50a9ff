"""`hubkit pull`: download the models of a sweep slice for reanalysis, resumably, and verify every file.

A selection is repo ids, or card metadata filters over an author's hubkit models (the tags every card
carries: `sft-dataset-<name>`, `tuning-<full|lora>`, `epochs-<n>`, `data-size-<n>`, `schedule-<name>`,
`sweep-<name>`, plus the base model from `base_model`). File patterns pick weights only, configs only or
everything. Downloads go through `snapshot_download` at the repo's current commit (interrupted files resume);
then each file is checked against the repo's file list and checksums (sha256 for LFS files, the git blob id for
the others), and anything missing, short or corrupted is fetched again — a snapshot that silently misses
files is a known pain at scale, and `snapshot_download` trusts its local metadata.

Example:
    >>> pull(author="my-org", tuning="lora", dataset="lima", only="configs", output_dir="pulled")
    [PulledModel(repo_id='my-org/smollm2-…-lima-1k-lora-e3-cosine-…', files=5, bytes=…)]
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from .errors import HubkitError
from .utils import JsonRecord

PATTERNS = {
    "all": None,
    "weights": ["*.safetensors", "*.safetensors.index.json", "config.json", "adapter_config.json"],
    "configs": ["*.json", "*.yaml", "*.yml", "*.md", "*.txt", "tokenizer*"],
}
MANIFEST = "pulled.json"


@dataclass
class PulledModel(JsonRecord):
    """One downloaded model: where it is and what was verified (`pulled.json` in its folder)."""

    repo_id: str
    revision: str
    folder: str
    files: int
    bytes: int
    refetched: list[str]

    @classmethod
    def of(cls, folder: str | Path) -> PulledModel | None:
        """The record of a folder `pull` filled, or None when it holds none (or an unreadable one)."""
        try:
            return cls.read(Path(folder) / MANIFEST)
        except HubkitError:
            return None


def select_models(repo_ids: list[str] | None = None, author: str | None = None, base_model: str | None = None,
                  dataset: str | None = None, tuning: str | None = None, epochs: int | None = None,
                  data_size: int | None = None, sweep: str | None = None, tags: list[str] | None = None) -> list[str]:
    """The repo ids a selection names: explicit ids, or an author's hubkit models matching every filter.

    Raises:
        HubkitError: neither ids nor an author, or nothing matches.
    """
    from .hub import get_api, hub_errors, retrying
    from .utils import slug

    if repo_ids:
        api = get_api()
        for repo_id in repo_ids:  # fail before any download starts
            with hub_errors(f"pull {repo_id}", not_found=f"pull {repo_id}: no such model on the Hub (or no access)",
                            endpoint=api.endpoint):
                retrying(api.model_info, repo_id)
        return list(dict.fromkeys(repo_ids))
    if not author:
        raise HubkitError("pull: give repo ids, or --author with filters")
    wanted = ["hubkit-sft", *(tags or [])]
    if dataset:
        wanted.append(f"sft-dataset-{slug(dataset.replace('w/o-', 'wo-'))}")
    if tuning:
        wanted.append(f"tuning-{tuning}")
    if epochs is not None:
        wanted.append(f"epochs-{epochs}")
    if data_size is not None:
        wanted.append(f"data-size-{data_size}")
    if sweep:
        wanted.append(f"sweep-{slug(sweep)}")
    found = []
    for info in get_api().list_models(author=author, filter=wanted, cardData=bool(base_model)):
        if base_model:
            card = info.card_data.to_dict() if info.card_data else {}
            base = card.get("base_model")
            if base != base_model and not (isinstance(base, list) and base_model in base):
                continue
        found.append(info.id)
    if not found:
        raise HubkitError(f"pull: no model of {author} matches {', '.join(wanted[1:]) or 'hubkit-sft'}"
                          + (f" with base {base_model}" if base_model else ""))
    return sorted(found)


def file_digest_matches(path: Path, sibling) -> bool:
    """Whether a downloaded file is the repo's: sha256 for LFS files, the git blob id (sha1 of `blob <size>\\0`
    and the content) for the others, as `model_info(files_metadata=True)` reports them; size where neither is
    known. A same-size corruption fails it."""
    import hashlib

    if not path.is_file():
        return False
    size = path.stat().st_size
    if sibling.size is not None and size != sibling.size:
        return False
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        digest, expected = hashlib.sha256(), lfs.sha256
    elif getattr(sibling, "blob_id", None):
        digest, expected = hashlib.sha1(f"blob {size}\0".encode()), sibling.blob_id
    else:
        return True
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest() == expected


def _wanted(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(Path(name).name, p) for p in patterns)


def pull_model(repo_id: str, output_dir: str | Path, only: str = "all", progress: bool = False) -> PulledModel:
    """Download one repo's matching files into `output_dir/<owner>--<name>` and verify them.

    Raises:
        HubkitError: the repo cannot be read, or a file is still missing or of the wrong size after a
            second attempt (naming the file).
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    from .hub import get_api, hub_errors, retrying

    if only not in PATTERNS:
        raise HubkitError(f"pull: --only must be one of {', '.join(PATTERNS)}, got {only!r}")
    patterns = PATTERNS[only]
    api = get_api()
    folder = Path(output_dir) / repo_id.replace("/", "--")
    with hub_errors(f"pull {repo_id}", endpoint=api.endpoint):
        info = retrying(api.model_info, repo_id, files_metadata=True)
        wanted = {s.rfilename: s for s in info.siblings or [] if _wanted(s.rfilename, patterns)}
        expected = {name: s.size for name, s in wanted.items()}
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

        quiet = not progress and not are_progress_bars_disabled()
        if quiet:
            disable_progress_bars()
        try:
            snapshot_download(repo_id, revision=info.sha, allow_patterns=patterns, local_dir=folder,
                              token=api.token, endpoint=api.endpoint)
        finally:
            if quiet:
                enable_progress_bars()
        refetched = []
        for name, sibling in sorted(wanted.items()):
            local = folder / name
            if file_digest_matches(local, sibling):
                continue
            refetched.append(name)
            retrying(hf_hub_download, repo_id, name, revision=info.sha, local_dir=folder, force_download=True,
                     token=api.token, endpoint=api.endpoint)
            if not file_digest_matches(local, sibling):
                have = local.stat().st_size if local.is_file() else 0
                raise HubkitError(f"pull {repo_id}: {name} does not match the repo after a second download "
                                  f"({have:,} of {sibling.size or 0:,} bytes; checksum differs)")
    assert info.sha is not None  # a Hub answers a model's info with its commit
    result = PulledModel(repo_id, info.sha, folder.name, len(expected), sum(s or 0 for s in expected.values()),
                         refetched)
    result.write(folder / MANIFEST)
    return result


def pull(output_dir: str | Path = "pulled", only: str = "all", progress: bool = True, **selection) -> list[PulledModel]:
    """Select models (`select_models` arguments) and pull each one; a rerun only fetches what is missing."""
    from tqdm.auto import tqdm

    if only not in PATTERNS:
        raise HubkitError(f"pull: --only must be one of {', '.join(PATTERNS)}, got {only!r}")
    repos = select_models(**selection)
    return [pull_model(r, output_dir, only=only) for r in tqdm(repos, desc="pulling", unit="model",
                                                               disable=not progress)]
