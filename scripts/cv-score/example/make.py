"""Write iris.csv (Fisher's irises, 150 rows, species as text) and diabetes.csv (442 rows, numeric
target), both from scikit-learn's shipped datasets: a classification and a regression example.

Run with the script's requirements installed: python example/make.py
"""

from pathlib import Path

from sklearn.datasets import load_diabetes, load_iris

here = Path(__file__).parent
iris = load_iris(as_frame=True)
frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
frame["species"] = frame.pop("target").map(dict(enumerate(iris.target_names)))
frame.to_csv(here / "iris.csv", index=False)
diabetes = load_diabetes(as_frame=True, scaled=False).frame.rename(
    columns={"target": "progression"}
)
diabetes.to_csv(here / "diabetes.csv", index=False)
