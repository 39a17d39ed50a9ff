"""Answer extraction and matching for the study's generative benchmarks (pure functions, no model).

- GSM8K: the final number of a solution (`#### 18`, `The answer is 18`, `A: 18`, or the last number),
  compared numerically (`18` = `18.00` = `$18`).
- MATH / MATH-500: the last `\\boxed{…}` (or `The answer is …`), normalised the way the MATH paper's
  grader does (spaces, `\\left`/`\\right`, `\\dfrac`, `\\frac12`, units, `0.5` vs `.5`, …).
- NQ-open: SQuAD normalisation (case, punctuation, articles, whitespace), a match with any gold answer.

The evaluate modules in `hubkit/eval/metrics/` wrap these, so `evaluate.load(path)` never needs the network.

Example:
    >>> gsm8k_match("So she makes 9 * 2 = $18.\\n#### 18", "18")
    True
    >>> math_match("… so the answer is $\\\\boxed{\\\\dfrac{1}{2}}$.", "\\\\frac12")
    True
"""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _clean_number(text: str) -> str:
    return text.replace(",", "").replace("$", "").rstrip(".").strip()


def gsm8k_extract(text: str) -> str | None:
    """The final numeric answer of a GSM8K-style solution, or None when it has no number."""
    for marker in (r"####\s*([^\n]*)", r"[Tt]he (?:final )?answer is[:\s]*([^\n]*)", r"(?:^|\n)A:\s*([^\n]*)"):
        found = re.findall(marker, text)
        if found:
            numbers = _NUMBER.findall(found[-1])
            if numbers:
                return _clean_number(numbers[0])
    numbers = _NUMBER.findall(text)
    return _clean_number(numbers[-1]) if numbers else None


def gsm8k_match(prediction: str, gold: str) -> bool:
    """Whether a generated solution's final number equals the gold answer (a number, or a `#### n` solution)."""
    predicted = gsm8k_extract(prediction)
    target = _clean_number(gold) if _NUMBER.fullmatch(_clean_number(gold)) else gsm8k_extract(gold)
    if predicted is None or not target:
        return False
    try:
        return Decimal(predicted) == Decimal(target)
    except InvalidOperation:
        return predicted == target


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`), braces balanced; None when there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    if text.startswith("\\boxed ", start):  # `\boxed 5`
        return text[start + 7:].split("$")[0].strip()
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1:i]
    return None


def math_extract(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    found = re.findall(r"[Tt]he (?:final )?answer is[:\s]*\$?([^\n$]+)", text)
    return found[-1].strip().rstrip(".") if found else None


def _fix_fracs(s: str) -> str:
    """`\\frac12` → `\\frac{1}{2}`, `\\frac1{2}` → `\\frac{1}{2}`."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
            continue
        a, rest = part[0], part[1:]
        if rest.startswith("{"):
            out += "{" + a + "}" + rest
        else:
            out += "{" + a + "}{" + rest[0] + "}" + rest[1:]
    return out


def _fix_sqrt(s: str) -> str:
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def _fix_slash(s: str) -> str:
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    return f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}" if m else s


def math_normalize(answer: str) -> str:
    """Normalise a MATH answer string so that equivalent writings compare equal."""
    s = answer.strip().replace("\n", "").rstrip(".")
    s = s.replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\%", "").replace("%", "").replace("\\$", "")
    s = s.replace("$", "")
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    s = re.sub(r"\\mbox\{\s*([^}]*)\}", r"\1", s)
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    if "=" in s and len(s.split("=")[0].strip()) <= 2:  # `x = 5` → `5`
        s = s.split("=", 1)[1]
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    s = _fix_slash(s)
    s = re.sub(r"(\d),(\d\d\d)", r"\1\2", s)  # 1,000 → 1000
    return s


def math_match(prediction: str, gold: str) -> bool:
    """Whether a generated solution's answer equals the gold answer after normalisation."""
    predicted = math_extract(prediction)
    if predicted is None:
        return False
    target = math_extract(gold) if "\\boxed" in gold else gold
    return math_normalize(predicted) == math_normalize(target or "")


def squad_normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def nq_match(prediction: str, answers: list[str]) -> bool:
    """Exact match of the first line of a prediction with any gold answer (SQuAD normalisation)."""
    lines = prediction.strip().splitlines()
    first = squad_normalize(lines[0]) if lines else ""
    return bool(first) and any(first == squad_normalize(a) for a in answers)
