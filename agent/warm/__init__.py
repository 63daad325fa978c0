"""Warm containers: started per script version, waiting for one job each (see pool.py)."""
