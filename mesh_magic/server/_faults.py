"""Describe injected faults and decide, thread-safely, which request each one hits."""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = frozenset(
    {
        "status",
        "latency",
        "slow_body",
        "malformed_json",
        "non_json",
        "empty_data",
        "missing_fields",
        "corrupt_b64",
        "not_image",
        "truncated_image",
        "huge_image",
        "corrupt_image",
        "hollow_image",
        "patch_item",
        "patch_body",
        "huge_body",
        "reset",
        "stream_break",
        "stream_error",
        "redirect",
    }
)

# Only a streamed generation can break mid-stream; elsewhere these kinds don't match.
_STREAM_ONLY = frozenset({"stream_break", "stream_error"})

ENVELOPES = frozenset({"mesh", "fastapi", "fastapi_list", "html", "empty"})


@dataclass
class Fault:
    """One misbehaviour to inject into matching requests.

    `times` counts the matching requests still to hit (-1 = forever) once `skip` of
    them have passed untouched; `path` is a prefix of the request path; `model`
    narrows to one requested model. See the package docstring for what each `kind` does.
    """

    kind: str
    times: int = 1
    # Matching requests let through untouched before the fault starts to hit.
    skip: int = 0
    path: str = "/v1/images/generations"
    model: str | None = None
    probability: float = 1.0
    seed: int | None = None
    status: int | None = None
    # None: the MeshAPI envelope, except FastAPI's detail list for 422 like the real API.
    envelope: str | None = None
    code: str | None = None
    message: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    location: str | None = None
    size_mb: float = 64.0
    # Where a status fault's retry_after goes: the header and the body, or only one of them.
    retry_after_in: str = "both"
    # patch_item / patch_body: JSON fields merged into every image item / the answer (junk
    # values such as {"url": "http://[::1/x.png"} or {"created": 1e20}).
    patch: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.envelope is not None and self.envelope not in ENVELOPES:
            raise ValueError(f"unknown envelope {self.envelope!r}; one of {sorted(ENVELOPES)}")
        if self.kind == "status" and self.status is None:
            raise ValueError("a 'status' fault needs a status code")
        if self.retry_after_in not in ("both", "header", "body"):
            raise ValueError("retry_after_in must be 'both', 'header' or 'body'")
        if self.kind in ("patch_item", "patch_body") and not isinstance(self.patch, dict):
            raise ValueError(f"a {self.kind!r} fault needs a 'patch' object")
        if self.retry_after is not None:
            # Accept numbers for convenience; the header is sent verbatim as text.
            self.retry_after = str(self.retry_after)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


class FaultPlan:
    """The faults still pending, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rngs: dict[int, random.Random] = {}

    def add(self, fault: Fault) -> None:
        if fault.times == 0:
            return  # already used up; -1 means forever
        with self._lock:
            self._faults.append(fault)
            self._rngs[id(fault)] = random.Random(fault.seed)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rngs.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, model: str | None, stream: bool) -> Fault | None:
        """The fault to apply to this request, if any, counting it as used."""
        with self._lock:
            for fault in self._faults:
                if not path.startswith(fault.path):
                    continue
                if fault.model is not None and fault.model != model:
                    continue
                if fault.kind in _STREAM_ONLY and not stream:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.probability < 1.0 and self._rngs[id(fault)].random() >= fault.probability:
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                        del self._rngs[id(fault)]
                return fault
            return None
