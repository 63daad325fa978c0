"""Write wine.csv: scikit-learn's wine recognition data (178 wines, 13 measurements, cultivar).

Run with the script's requirements installed plus scikit-learn: python example/make.py
"""

from pathlib import Path

from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
frame = wine.frame.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})
frame["cultivar"] = frame.pop("target").map(dict(enumerate(wine.target_names)))
frame.to_csv(Path(__file__).with_name("wine.csv"), index=False)
