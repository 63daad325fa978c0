"""``python -m agent``: the same as ``hq agent``."""

from hq.cli.agent import agent

agent()
