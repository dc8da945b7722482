"""The doctor's result type: a Check with a PASS / WARN / FAIL status, a summary, a hint and
JSON-friendly details; the worst status of several."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}

TITLES = {"gradients": "gradient check", "init": "initialisation health",
          "overfit": "overfit a tiny subset", "cost": "parameters and FLOPs",
          "lr": "learning-rate search"}


@dataclass
class Check:
    name: str          # gradients | init | overfit | cost | lr
    title: str
    status: str        # PASS | WARN | FAIL
    summary: str
    hint: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "hint": self.hint, "details": _jsonable(self.details)}


def overall(checks) -> str:
    """The worst status of the checks (PASS when there are none)."""
    worst = PASS
    for c in checks:
        if _RANK[c.status] > _RANK[worst]:
            worst = c.status
    return worst


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v
