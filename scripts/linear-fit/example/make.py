"""Write diabetes.csv: scikit-learn's diabetes data (Efron et al. 2004), unscaled, 442 patients.

Run with the script's requirements installed: python example/make.py
"""

from pathlib import Path

from sklearn.datasets import load_diabetes

frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
frame.to_csv(Path(__file__).with_name("diabetes.csv"), index=False)
