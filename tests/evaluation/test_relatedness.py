"""Relatedness before labels: the EM class-mix estimate recovers a known prior shift; differences and blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from painml.evaluation.relatedness import blocks_recorded, em_prior_adjustment, standardised_differences
from painml.record.columns import BLOCKS
from painml.simulator.simulate import simulate


def _posterior(x: np.ndarray, prior: np.ndarray, means: np.ndarray) -> np.ndarray:
    joint = norm.pdf(x[:, None], loc=means[None, :]) * prior
    return joint / joint.sum(axis=1, keepdims=True)


def test_em_recovers_a_known_prior_shift():
    """Three Gaussian classes: the exact posterior under the source mix, applied to a site drawn with another
    mix, gives back the site's mix (Saerens et al. 2002), and the adjusted posterior is the site's exact one."""
    rng = np.random.default_rng(0)
    means = np.array([-2.0, 0.0, 2.0])
    source, site = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.3, 0.5])
    y = rng.choice(3, size=20_000, p=site)
    x = rng.normal(means[y], 1.0)
    shift = em_prior_adjustment(_posterior(x, source, means), source)
    assert shift.converged
    assert np.allclose(shift.site_prior, site, atol=0.015)
    assert np.allclose(shift.proba, _posterior(x, shift.site_prior, means), atol=1e-6)


def test_em_leaves_the_mix_alone_without_a_shift():
    rng = np.random.default_rng(1)
    means = np.array([-1.0, 0.5, 2.0])
    prior = np.array([0.5, 0.3, 0.2])
    y = rng.choice(3, size=20_000, p=prior)
    x = rng.normal(means[y], 1.0)
    shift = em_prior_adjustment(_posterior(x, prior, means), prior)
    assert np.allclose(shift.site_prior, prior, atol=0.015)


def test_standardised_differences_and_blocks_see_a_missing_questionnaire():
    a = simulate("pain_clinic", 800, seed=1)
    b = simulate("orthopaedic", 300, seed=2)
    b.loc[:, list(BLOCKS["dn4_interview"])] = pd.NA
    table = standardised_differences(a, b)
    assert {"feature", "smd", "source_missing", "site_missing"} <= set(table.columns)
    assert table["smd"].abs().iloc[0] == table["smd"].abs().max()
    dn4 = table[table["feature"].isin(BLOCKS["dn4_interview"])]
    assert (dn4["site_missing"] == 1.0).all() and dn4["smd"].isna().all()
    assert blocks_recorded(b)["dn4_interview"] == 0.0
    assert blocks_recorded(a)["paindetect"] > 0
