"""A script configured only by environment variables, as twelve-factor tools often are.

    N_CLUSTERS=3 MODE=fast DATA_PATH=points.csv python env_echo.py

It reads N_CLUSTERS (default 2), MODE (default "fast"), DATA_PATH and LABEL (both optional), and
writes RESULTS_PATH (default results.json): its metrics and, in the table "env", every variable
of its environment, so a test can check exactly what it was given.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    n_clusters = int(os.environ.get("N_CLUSTERS", "2"))
    mode = os.environ.get("MODE", "fast")
    data = os.environ.get("DATA_PATH")
    size = Path(data).stat().st_size if data else 0
    print(f"n_clusters={n_clusters} mode={mode} data={data} ({size} bytes)")
    results = {
        "metrics": {"n_clusters": n_clusters, "data_bytes": size, "fast": int(mode == "fast")},
        "tables": {"env": [{"name": k, "value": v} for k, v in sorted(os.environ.items())]},
    }
    Path(os.environ.get("RESULTS_PATH", "results.json")).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
