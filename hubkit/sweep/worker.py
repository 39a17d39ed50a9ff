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
    from .stages import execute

    job = json.loads(Path(job_file).read_text())
    try:
        result = execute(job["stage"], job["spec"], job["log"], job.get("options"))
    except HubkitError as e:
        result = {"ok": False, "error": str(e), "seconds": 0.0}
    tmp = Path(result_file).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, result_file)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
