"""Entry point of a local sweep worker: `python -m hubkit.sweep.worker JOB.json RESULT.json`.

Runs one stage of one run (see `stages.execute`) and writes its outcome to RESULT.json atomically.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(job_file: str, result_file: str) -> int:
    from ..errors import HubkitError
    from .executors import Job
    from .stages import Outcome, execute

    job = Job.from_json(json.loads(Path(job_file).read_text()))
    try:
        outcome = Outcome.from_json(execute(job.stage, job.spec, str(job.log_path), job.options, job.group))
    except HubkitError as e:
        outcome = Outcome(False, 0.0, str(e))
    tmp = Path(result_file).with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome.to_json()))
    os.replace(tmp, result_file)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
