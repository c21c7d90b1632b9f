"""The synthetic centre (``assign.world``) as a simulation source: its agents and shifts, its
arrival process, and outcomes from its hidden truth.

Outcomes use the world's own draw model (Bernoulli resolution, CSAT = 1 + Binomial(4, q),
log-normal handle time with the world's sigma), but from three uniforms drawn per contact up
front, so the same contact served by the same agent has the same outcome under every policy
(common random numbers); expectations equal ``World.truth`` exactly as in
``World.draw_outcomes``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from assign.constants import DAY_S
from assign.sim.source import STREAM_ARRIVALS, STREAM_OUTCOMES, ContactStream, Outcomes, ShiftPlan, Source, stream_rng
from assign.world.centre import hire_days


class WorldSource(Source):
    """Wraps a :class:`assign.world.centre.World`; its hidden truth is the oracle's."""

    has_truth = True

    def __init__(self, world, *, name: str = "world") -> None:
        from assign.world.truth import COEF_NAMES

        self.world = world
        self.name = name
        self.start = world.start
        self.intents = tuple(world.intents)
        self.languages = tuple(world.languages)
        self.styles = tuple(world.styles)
        self.agents = world.agents_block()
        self._sigma = float(world.coef[COEF_NAMES.index("ht_sigma")])
        self._z: tuple[ContactStream | None, np.ndarray] = (None, np.zeros(0))

    def tenure_at_start(self) -> np.ndarray:
        """The world's own tenure: a hire holds minus the days until it joins."""
        return np.asarray(self.world.arrays.tenure_days, float)

    def contacts(self, *, seed: int, horizon_s: float) -> ContactStream:
        df = self.world.sample_arrivals(rng=stream_rng(seed, STREAM_ARRIVALS), start_s=0.0, end_s=horizon_s)
        block = self.world.contacts_block(df)
        n = len(df)
        u = stream_rng(seed, STREAM_OUTCOMES).random((n, 3))
        return ContactStream(block=block, arrival_s=df["arrival_s"].to_numpy(float),
                             patience_s=df["patience_s"].to_numpy(float), credit_s=np.zeros(n), u=u)

    def shifts(self, *, horizon_s: float) -> ShiftPlan:
        """Exact shift starts and ends, following ``World.on_shift``: a shift belongs to the
        weekday it starts on, and no shift starts on an agent's off day."""
        ag = self.world.agents
        start_h = ag["shift_start_h"].to_numpy(float)
        length_h = (ag["shift_end_h"].to_numpy(float) - start_h) % 24.0
        length_h[length_h == 0] = 24.0
        off = np.zeros((len(ag), 7), dtype=bool)
        for j, days in enumerate(ag["off_days"]):
            off[j, list(days)] = True
        t, a, on = [], [], []
        wd0 = self.start.weekday()
        hired_from = hire_days(ag)  # new hires work from their hire day on
        for d in range(-1, int(np.ceil(horizon_s / DAY_S)) + 1):
            works = ~off[:, (wd0 + d) % 7] & ((hired_from == 0) | (d >= hired_from))
            s = d * DAY_S + start_h * 3600.0
            e = s + length_h * 3600.0
            m = works & (e > 0) & (s < horizon_s)
            idx = np.flatnonzero(m)
            t += [np.maximum(s[idx], 0.0), e[idx]]
            a += [idx, idx]
            on += [np.ones(len(idx), bool), np.zeros(len(idx), bool)]
        t_, a_, on_ = np.concatenate(t), np.concatenate(a), np.concatenate(on)
        # Sort by time; at equal times ends before starts, so a back-to-back shift stays on.
        order = np.lexsort((on_, t_))
        t_, a_, on_ = t_[order], a_[order], on_[order]
        # Collapse an end and a start of the same agent at the same instant.
        keep = np.ones(len(t_), bool)
        last: dict[tuple[float, int], int] = {}
        for k in range(len(t_)):
            key = (t_[k], int(a_[k]))
            if key in last and not on_[last[key]] and on_[k]:
                keep[last[key]] = keep[k] = False
            last[key] = k
        return ShiftPlan(t_s=t_[keep], agent=a_[keep], on=on_[keep])

    def _truth(self, stream: ContactStream, contact_idx, agent_idx, agent_load, t_s):
        return self.world.truth(contacts=stream.block, contact_idx=contact_idx, agent_idx=agent_idx,
                                agent_load=agent_load, t_s=t_s)

    def _handle_z(self, stream: ContactStream) -> np.ndarray:
        """Per contact of ``stream``, the standard normal quantile of its handle-time uniform
        (``ndtri`` works element by element: the same values as computed pair by pair), kept
        for the last stream seen: a run asks for thousands of outcomes of one stream."""
        z = self._z  # read once: another thread may replace it meanwhile
        if z[0] is not stream:
            self._z = z = (stream, ndtri(stream.u[:, 0]))
        return z[1]

    def __getstate__(self) -> dict:
        """Pickled without the cached quantiles (a source ships to workers without a run's stream)."""
        return {**self.__dict__, "_z": (None, np.zeros(0))}

    def outcomes(self, *, stream: ContactStream, contact_idx: np.ndarray, agent_idx: np.ndarray,
                 agent_load: np.ndarray, t_s: float = 0.0) -> Outcomes:
        tr = self._truth(stream, contact_idx, agent_idx, agent_load, t_s)
        sig = self._sigma
        handle = tr.handle_mean_s * np.exp(sig * self._handle_z(stream)[contact_idx] - 0.5 * sig * sig)
        nan = np.full(len(handle), np.nan)  # resolution and CSAT: drawn in one batch by complete_outcomes
        return Outcomes(handle_s=handle, resolved=nan, csat=nan, truth_p_resolved=tr.p_resolved,
                        truth_csat=tr.csat_mean, truth_handle_s=tr.handle_mean_s)

    def complete_outcomes(self, *, stream: ContactStream, contact_idx: np.ndarray, truth_p_resolved: np.ndarray,
                          truth_csat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resolution and CSAT of answered contacts, drawn after the run from their truth and
        their own uniforms (nothing during the run depends on them)."""
        u = stream.u[contact_idx]
        resolved = (u[:, 1] < truth_p_resolved).astype(float)
        q = np.clip((truth_csat - 1.0) / 4.0, 0.0, 1.0)
        k = np.arange(5)
        binom = np.array([1, 4, 6, 4, 1], float)
        pmf = binom[None, :] * q[:, None] ** k[None, :] * (1 - q[:, None]) ** (4 - k[None, :])
        cdf = np.cumsum(pmf, axis=1)  # inverse CDF of Binomial(4, q) at u[:, 2]
        csat = 1.0 + (u[:, 2:3] > cdf[:, :4]).sum(axis=1)
        return resolved, csat.astype(float)

    def truth_quality(self, *, stream: ContactStream, contact_idx: np.ndarray, agent_idx: np.ndarray,
                      agent_load: np.ndarray, t_s: float = 0.0) -> np.ndarray:
        """True expected resolution of pairs: what the oracle policy optimises."""
        return self._truth(stream, contact_idx, agent_idx, agent_load, t_s).p_resolved

    def expected_handle_s(self) -> np.ndarray:
        """Service-time estimates for gcµ without the hidden truth: the world's calibrated
        handle time per channel, scaled by ``1.5 - 0.5 * proficiency`` (a stated heuristic:
        skilled agents are faster). The voice figure is used for every agent."""
        base = float(self.world.calibrated_handle_s[0])
        return base * (1.5 - 0.5 * self.agents.skill)
