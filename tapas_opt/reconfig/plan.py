"""A reconfiguration plan: what every VM does after the event. All policies (optimal, greedy,
uniform-cap) produce one, and one checker (:mod:`tapas_opt.reconfig.evaluate`) scores them all."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ReconfigPlan:
    """Per SaaS VM (order of ``instance.saas``): configuration (catalogue position) and units of
    load served; per IaaS VM (order of ``instance.iaas``): GPU load after any power cap.

    ``saas_clock`` scales a SaaS VM's dynamic power and, by the power-cap exponent, its
    throughput (the uniform frequency cap of the baseline); 1 means no cap.
    """

    policy: str
    saas_config: np.ndarray
    saas_load: np.ndarray
    iaas_load: np.ndarray
    saas_clock: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def unchanged(cls, instance, policy: str = "none") -> "ReconfigPlan":
        """Every VM keeps its configuration and its own load; no cap."""
        return cls(policy, instance.saas["current"].to_numpy(int).copy(),
                   instance.saas["demand"].to_numpy(float).copy(), instance.iaas["load"].to_numpy(float).copy())

    def clock(self, n: int) -> np.ndarray:
        return np.ones(n) if self.saas_clock is None else np.asarray(self.saas_clock, float)
