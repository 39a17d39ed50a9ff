"""The benchmark registry: one YAML record per benchmark, read once by this small typed loader.

A record (`hubkit/benchmarks/<id>.yaml`) holds everything hubkit knows about a benchmark, in one place, as an
lm-evaluation-harness task YAML does: its id, title and group; every metric it reports with its scale, direction
and valid range, and which metric is the headline; the study's shot count; the chance level and the
format-failure threshold; the dataset it reads (public id, seeded repo, source and revision, licence); the names
it is known by in other sources (the study's CSV column, lm-eval 0.3 / 0.4 task names, lighteval) and how a
source's value maps to hubkit's scale. `metrics.yaml` is the catalogue of metric names hubkit can interpret in
files from elsewhere (an lm-eval task hubkit does not declare).

Everything else reads the registry: the eval tasks (shots, metrics, seeded repo; a record with a `task:` section
*is* a multiple-choice task, no code), result rows and importers, seeding, the analyses (chance, format failures),
the CLI help, the Space (`benchmarks.json`, a generated copy) and the benchmark table of docs/publishing.md.

| field | meaning |
| --- | --- |
| `id`, `title`, `group` | the results schema's name, the display name, the leaderboard group |
| `headline` | the metric a leaderboard average and a card's headline take (one per benchmark) |
| `metrics.<name>` | `scale` (`percent`, `1-10`, `raw`), `higher_is_better`, optional `range` and `description` |
| `study_shots` | the shot count the study reports (null: LLM-judged, no shots) |
| `chance`, `format_failure_points` | chance level in points; a base at or under the threshold fails the format |
| `dataset` | `id` (public), `config`, `seed` (the `hubkit-data/<seed>` repo), `split`, `source`, `revision`, `license` |
| `names.study_csv` | `column` (the CSV's prefix before `-<n>shot`), `metric`, `unit` (`percent` or `fraction`) |
| `names.lm_eval`, `names.lighteval` | task names in those harnesses; `names.lm_eval_metrics` maps their metric keys |
| `subscores` | benchmarks reported beside it from the same run (MT-Bench's categories): ids `<id>_<name>` |
| `task` | a multiple-choice task made from the record: `prompt` and `choices` templates, `label` field |

Adding a benchmark is one record (and its data as a Hub dataset): see `docs/benchmarks-registry.md`.

Example:
    >>> from hubkit.benchmarks import BENCHMARKS
    >>> b = BENCHMARKS["mmlu"]
    >>> b.headline, b.study_shots, b.metric(b.headline).scale
    ('acc', 5, 'percent')
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HubkitError

HERE = Path(__file__).resolve().parent
SCALES = {"percent": "percent (0–100)", "1-10": "grade from 1 to 10 (LLM judge)",
          "raw": "unbounded (perplexity, bits, likelihood difference)"}
#: The valid range of each scale (None: unbounded on that side).
SCALE_RANGES: dict[str, tuple[float | None, float | None]] = {"percent": (0.0, 100.0), "1-10": (1.0, 10.0),
                                                              "raw": (None, None)}
UNITS = ("percent", "fraction", "same")  # how a source writes a value: in percent, as a fraction, or on hubkit's scale
GROUPS = ("code", "math", "knowledge", "chat", "multilingual", "long-context", "instruction", "reasoning")
FORMAT_FAILURE_POINTS = 2.5  # the default threshold, in points, under which a base model fails a benchmark's format
#: Extra folders of records, `:`-separated (a lab's own benchmarks, kept outside the package).
PATH_ENV = "HUBKIT_BENCHMARKS_PATH"


@dataclass(frozen=True)
class Metric:
    """One metric a benchmark reports, on hubkit's scale.

    Attributes:
        name: the metric's name in result rows (`acc`, `acc_norm`, `exact_match`, `judge_score`, …).
        scale: `percent` (0–100), `1-10` (an LLM judge's grade) or `raw` (unbounded).
        higher_is_better: the direction.
        range: the valid values on hubkit's scale (default: the scale's).
        lm_eval_unit: how lm-eval writes it (`fraction` for accuracies, `same` for what it writes on hubkit's scale).
        description: what it measures, in a few words.
    """

    name: str
    scale: str
    higher_is_better: bool = True
    range: tuple[float | None, float | None] = (None, None)
    lm_eval_unit: str = "fraction"
    description: str = ""

    def check(self, value: float, where: str) -> float:
        """`value` if it is a finite number inside this metric's range, else a one-line error naming `where`."""
        low, high = self.range
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise HubkitError(f"{where}: {self.name} is {value!r}, not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
            raise HubkitError(f"{where}: {self.name} = {value:g} is outside its {self.scale} range {span}")
        return float(value)


@dataclass(frozen=True)
class StudyColumn:
    """Where the study's CSV keeps a benchmark: columns `<column>-<n>shot` (or `column` alone), which metric they
    hold and in which unit the CSV writes it."""

    column: str
    metric: str
    unit: str = "percent"
    subscore_column: str | None = None  # `mtbench-{name}`: where a sub-score's column is


@dataclass(frozen=True)
class MultipleChoice:
    """A multiple-choice task made from a record, lm-eval style: `prompt` and each of `choices` are Python format
    strings over a record's fields (`{question}`); `choices` may instead name a list field; `label` names the field
    holding the index of the right choice."""

    prompt: str
    choices: str | list[str]
    label: str
    shot_split: str | None = None


@dataclass(frozen=True)
class Benchmark:
    """Everything hubkit knows about one benchmark (one record of the registry)."""

    id: str
    title: str
    group: str
    headline: str
    metrics: dict[str, Metric]
    study_shots: int | None = 0
    chance: float = 0.0
    format_failure_points: float = FORMAT_FAILURE_POINTS
    dataset: dict[str, Any] = field(default_factory=dict)
    study_csv: StudyColumn | None = None
    lm_eval: tuple[str, ...] = ()
    lm_eval_metrics: dict[str, str] = field(default_factory=dict)
    lighteval: tuple[str, ...] = ()
    task: MultipleChoice | None = None
    parent: str | None = None  # a sub-score's benchmark (MT-Bench's categories)
    description: str = ""
    file: str = ""

    @property
    def scale(self) -> str:
        """The headline metric's scale."""
        return self.metrics[self.headline].scale

    @property
    def higher_is_better(self) -> bool:
        """The headline metric's direction."""
        return self.metrics[self.headline].higher_is_better

    @property
    def public_id(self) -> str:
        """The public dataset cards and `.eval_results/` name."""
        return str(self.dataset.get("id") or self.id)

    def metric(self, name: str) -> Metric:
        """One of the benchmark's metrics.

        Raises:
            HubkitError: the benchmark does not report it.
        """
        if name not in self.metrics:
            raise HubkitError(f"benchmark {self.id} has no metric {name!r} (it reports {', '.join(self.metrics)})")
        return self.metrics[name]

    def to_space(self) -> dict[str, Any]:
        """The record as the leaderboard Space reads it (`benchmarks.json`): no hubkit import needed there."""
        return {"group": self.group, "title": self.title, "metric": self.headline, "scale": self.scale,
                "higher_is_better": self.higher_is_better, "n_shot": self.study_shots, "dataset": self.public_id,
                "metrics": {m.name: {"scale": m.scale, "higher_is_better": m.higher_is_better}
                            for m in self.metrics.values()}}


def _metric(name: str, spec: dict[str, Any] | None, where: str, catalogue: dict[str, Metric]) -> Metric:
    spec = dict(spec or {})
    known = catalogue.get(name)
    scale = spec.pop("scale", known.scale if known else None)
    if scale not in SCALES:
        raise HubkitError(f"{where}: metric {name}: scale is {scale!r} (one of {', '.join(SCALES)})")
    higher = spec.pop("higher_is_better", known.higher_is_better if known else True)
    if not isinstance(higher, bool):
        raise HubkitError(f"{where}: metric {name}: higher_is_better must be true or false")
    low, high = spec.pop("range", None) or (known.range if known and known.scale == scale else SCALE_RANGES[scale])
    unit = spec.pop("lm_eval_unit", known.lm_eval_unit if known else ("fraction" if scale == "percent" else "same"))
    if unit not in UNITS:
        raise HubkitError(f"{where}: metric {name}: lm_eval_unit is {unit!r} (one of {', '.join(UNITS)})")
    description = spec.pop("description", known.description if known else "")
    if spec:
        raise HubkitError(f"{where}: metric {name}: unknown field {sorted(spec)[0]!r}")
    return Metric(name, scale, higher, (low, high), unit, description)


_FIELDS = {"id", "title", "group", "headline", "metrics", "study_shots", "chance", "format_failure_points",
           "dataset", "names", "subscores", "task", "description"}


def parse_record(data: Any, where: str, catalogue: dict[str, Metric]) -> list[Benchmark]:
    """The benchmarks one record defines (itself, then its sub-scores).

    Raises:
        HubkitError: a field missing, unknown or of the wrong type (one line naming the file and the field).
    """
    if not isinstance(data, dict):
        raise HubkitError(f"{where}: not a mapping")
    unknown = set(data) - _FIELDS
    if unknown:
        raise HubkitError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    for key in ("id", "title", "group", "headline", "metrics"):
        if not data.get(key):
            raise HubkitError(f"{where}: missing field {key!r}")
    bid = str(data["id"])
    if not bid.replace("_", "").isalnum() or bid != bid.lower():
        raise HubkitError(f"{where}: id {bid!r} must be lower-case letters, digits and underscores")
    if data["group"] not in GROUPS:
        raise HubkitError(f"{where}: group {data['group']!r} is not one of {', '.join(GROUPS)}")
    if not isinstance(data["metrics"], dict):
        raise HubkitError(f"{where}: metrics must map names to their scale")
    metrics = {str(n): _metric(str(n), s, where, catalogue) for n, s in data["metrics"].items()}
    if data["headline"] not in metrics:
        raise HubkitError(f"{where}: headline {data['headline']!r} is not one of its metrics")
    names = data.get("names") or {}
    study = names.get("study_csv")
    if study is not None:
        study = StudyColumn(str(study["column"]), str(study.get("metric", data["headline"])),
                            str(study.get("unit", "percent")), study.get("subscore_column"))
        if study.metric not in metrics or study.unit not in UNITS:
            raise HubkitError(f"{where}: names.study_csv: metric must be one of the record's, unit one of "
                              f"{', '.join(UNITS)}")
    lm_metrics = {str(k): str(v) for k, v in (names.get("lm_eval_metrics") or {}).items()}
    bad = [v for v in lm_metrics.values() if v not in metrics]
    if bad:
        raise HubkitError(f"{where}: names.lm_eval_metrics maps to {bad[0]!r}, not one of its metrics")
    task = data.get("task")
    if task is not None:
        try:
            task = MultipleChoice(str(task["prompt"]), task["choices"], str(task["label"]), task.get("shot_split"))
        except (KeyError, TypeError):
            raise HubkitError(f"{where}: task needs prompt, choices and label") from None
    shots = data.get("study_shots", 0)
    common: dict[str, Any] = {
        "group": data["group"], "study_shots": None if shots is None else int(shots),
        "chance": float(data.get("chance") or 0.0),
        "format_failure_points": float(data.get("format_failure_points", FORMAT_FAILURE_POINTS)),
        "dataset": dict(data.get("dataset") or {}), "description": str(data.get("description") or ""), "file": where}
    out = [Benchmark(bid, str(data["title"]), headline=str(data["headline"]), metrics=metrics, study_csv=study,
                     lm_eval=tuple(names.get("lm_eval") or ()), lm_eval_metrics=lm_metrics,
                     lighteval=tuple(names.get("lighteval") or ()), task=task, **common)]
    for sub in data.get("subscores") or []:
        column = None if study is None or not study.subscore_column else \
            StudyColumn(study.subscore_column.format(name=sub), study.metric, study.unit)
        out.append(Benchmark(f"{bid}_{sub}", f"{data['title']} {sub}", headline=str(data["headline"]),
                             metrics=metrics, study_csv=column, parent=bid, **common))
    return out


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise HubkitError(f"{path.name}: not a readable YAML record: {str(e).splitlines()[0]}") from None


def load_catalogue(path: Path = HERE / "metrics.yaml") -> dict[str, Metric]:
    """The metric catalogue: the metrics hubkit can interpret in files from elsewhere."""
    data = _read_yaml(path) or {}
    return {str(n): _metric(str(n), s, path.name, {}) for n, s in data.items()}


def load(folders: list[Path] | None = None) -> dict[str, Benchmark]:
    """Every record in `folders` (default: the package's, then `$HUBKIT_BENCHMARKS_PATH`), by id.

    Raises:
        HubkitError: a malformed record, or two records with one id or one source name.
    """
    if folders is None:
        folders = [HERE] + [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    records = [parse_record(_read_yaml(path), path.name, CATALOGUE) for folder in folders
               for path in sorted(Path(folder).glob("*.yaml")) if path.name != "metrics.yaml"]
    out: dict[str, Benchmark] = {}
    for record in sorted(records, key=lambda r: GROUPS.index(r[0].group)):  # by group, then file name (stable)
        for bench in record:
            if bench.id in out:
                raise HubkitError(f"{bench.file}: benchmark {bench.id!r} is also defined in {out[bench.id].file}")
            out[bench.id] = bench
    _check_names(out)
    return out


def _check_names(benchmarks: dict[str, Benchmark]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for b in benchmarks.values():
        names = [("lm-eval", n) for n in b.lm_eval] + [("lighteval", n) for n in b.lighteval]
        if b.study_csv is not None:
            names.append(("study CSV", b.study_csv.column))
        for key in names:
            if key in seen and seen[key] != b.id:
                raise HubkitError(f"{b.file}: the {key[0]} name {key[1]!r} is also {seen[key]}'s")
            seen[key] = b.id


CATALOGUE: dict[str, Metric] = load_catalogue()
BENCHMARKS: dict[str, Benchmark] = load([HERE])
#: Why the records in `$HUBKIT_BENCHMARKS_PATH` could not be read (`check()` raises it), or None.
PATH_ERROR: HubkitError | None = None
try:
    if os.environ.get(PATH_ENV):
        BENCHMARKS.update(load())
except HubkitError as _error:  # kept, not raised at import: the CLI reports it as one line (`check`)
    PATH_ERROR = _error


def check() -> None:
    """Raise what went wrong reading the records of `$HUBKIT_BENCHMARKS_PATH`, if anything did.

    Raises:
        HubkitError: a malformed record there (one line naming the file and the field).
    """
    if PATH_ERROR is not None:
        raise HubkitError(f"{PATH_ENV}: {PATH_ERROR}")


def add(path: str | Path) -> list[Benchmark]:
    """Read one more record into the registry (what `$HUBKIT_BENCHMARKS_PATH` does for a whole folder).

    Raises:
        HubkitError: malformed, or its id or a source name is taken.
    """
    path = Path(path)
    new = parse_record(_read_yaml(path), path.name, CATALOGUE)
    merged = dict(BENCHMARKS)
    for bench in new:
        if bench.id in merged:
            raise HubkitError(f"{path.name}: benchmark {bench.id!r} is also defined in {merged[bench.id].file}")
        merged[bench.id] = bench
    _check_names(merged)
    BENCHMARKS.update({b.id: b for b in new})
    return new


def remove(ids: list[str]) -> None:
    """Take records out of the registry again (for tests and notebooks that added one)."""
    for bid in ids:
        BENCHMARKS.pop(bid, None)


def by_lm_eval_name(task: str) -> Benchmark | None:
    """The benchmark an lm-eval task name (0.3 or 0.4) stands for, or None."""
    for b in BENCHMARKS.values():
        if task in b.lm_eval or task == b.id:
            return b
    return None


def by_study_column(prefix: str) -> Benchmark | None:
    """The benchmark a study-CSV column prefix (`gsm8k`, `BoolQ`, `mtbench-writing`) stands for, or None."""
    for b in BENCHMARKS.values():
        if b.study_csv is not None and b.study_csv.column == prefix:
            return b
    return None


def metric_spec(benchmark: str, metric: str) -> Metric | None:
    """How to read `metric` of `benchmark`: the record's metric, else the catalogue's (the base name before a
    `:filter`), else None (a metric hubkit cannot interpret)."""
    known = BENCHMARKS.get(benchmark)
    if known is not None and metric in known.metrics:
        return known.metrics[metric]
    return CATALOGUE.get(metric.split(":", 1)[0])


def markdown_table() -> str:
    """The benchmark table of docs/publishing.md, made from the registry (a test keeps that copy equal to it)."""
    lines = ["| benchmark | id | group | headline metric (scale) | other metrics | study shots | chance | dataset |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for b in BENCHMARKS.values():
        if b.parent:
            continue
        others = ", ".join(m for m in b.metrics if m != b.headline) or "—"
        shots = "judged" if b.study_shots is None else str(b.study_shots)
        subs = [x.id.removeprefix(b.id + "_") for x in BENCHMARKS.values() if x.parent == b.id]
        title = b.title + (f" (+ {len(subs)} categories)" if subs else "")
        lines.append(f"| {title} | `{b.id}` | {b.group} | {b.headline} ({b.scale}) | {others} | {shots} | "
                     f"{b.chance:g} | {b.public_id} |")
    return "\n".join(lines)
