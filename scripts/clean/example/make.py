"""Write diabetes-missing.csv: linear-fit's diabetes.csv (scikit-learn's diabetes data) with
about 8% of bmi and 70% of s6 blanked, so there is something to clean.

Run from this folder: python make.py
"""

import csv
import random
from pathlib import Path

HERE = Path(__file__).parent
random.seed(7)
rows = list(csv.DictReader((HERE / "../../linear-fit/example/diabetes.csv").open()))
for row in rows:
    if random.random() < 0.08:
        row["bmi"] = ""
    if random.random() < 0.7:
        row["s6"] = ""
with (HERE / "diabetes-missing.csv").open("w", newline="") as fh:
    writer = csv.DictWriter(fh, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
