"""Bayesian turn-quality model: known values, hidden isolation, caching, and the done-when AUC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from salesman_utils.agent import bayes as B
from salesman_utils.world.corpus import Dialogue, simulate_corpus, split


def _strip_hidden(dialogues: list[Dialogue]) -> list[Dialogue]:
    return [
        dataclasses.replace(d, turns=[dataclasses.replace(t, hidden={}) for t in d.turns])
        for d in dialogues
    ]


@pytest.fixture(scope="module")
def corpus_900():
    """The done-when corpus: 900 simulated calls, seed 11, split seed 0."""
    return split(simulate_corpus(900, seed=11), seed=0)


@pytest.fixture(scope="module")
def model_900(corpus_900):
    return B.fit_turn_quality(corpus_900["train"], prior_strength=2.0, em_iterations=50)


def test_posterior_beats_outcome_label_on_held_out_calls(corpus_900, model_900):
    """Done when: held-out AUC of the posterior >= AUC of the call-outcome label + 0.05."""
    test = corpus_900["test"]
    w = model_900.posterior(test)
    naive = B.naive_labels(test)
    table = B.validate(test, {"posterior": w, "naive": naive}, n_boot=200)
    auc = table[table.metric == "auc"].set_index("score").value
    assert auc["posterior"] >= auc["naive"] + 0.05, table
    diff, lo, _ = B.auc_difference(test, w, naive, n_boot=200)
    assert lo > 0, (diff, lo)  # the gain is not a resampling accident
    brier = table[table.metric == "brier"].set_index("score").value
    assert brier["posterior"] < brier["naive"]
    paired = B.paired_auc_table(test, {"posterior": w, "naive": naive}, "posterior", n_boot=200)
    row = paired.set_index("minus").loc["naive"]
    assert (row.auc_diff, row.lo) == pytest.approx((diff, lo))  # same pairing as auc_difference
    with pytest.raises(KeyError, match="reference score 'w'"):
        B.paired_auc_table(test, {"posterior": w}, "w")


def test_posterior_shape_range_and_fact_check(corpus_900, model_900):
    test = corpus_900["test"]
    w = model_900.posterior(test)
    n_agent = sum(t.speaker == "agent" for d in test for t in d.turns)
    assert w.shape == (n_agent,) and np.all((w >= 0) & (w <= 1))
    f = B.turn_features(test)
    assert f.violation.sum() > 0
    assert w[f.violation == 1].max() < 0.05  # a knowledge-base violation is a bad turn


def test_posterior_never_reads_hidden(corpus_900, model_900):
    test = corpus_900["test"][:20]
    np.testing.assert_array_equal(
        model_900.posterior(test), model_900.posterior(_strip_hidden(test))
    )
    refit = B.fit_turn_quality(_strip_hidden(corpus_900["train"]), em_iterations=50)
    np.testing.assert_allclose(refit.theta(), model_900.theta())


def test_cell_intervals_and_likelihoods(model_900):
    cells = model_900.cell_table()
    assert (cells.lo <= cells.theta).all() and (cells.theta <= cells.hi).all()
    assert (cells.n > 0).all()
    lik = model_900.likelihood_table().set_index("evidence")
    close = "next act after Operational_Guidance"
    assert lik.loc[f"{close}: agreement", "ratio"] > 1 > lik.loc[f"{close}: objection", "ratio"]
    assert lik.loc["next act after Business_Analysis: positive", "ratio"] > 1
    assert model_900.kappa[1] == B.KAPPA_GOOD
    again = B.TurnQualityModel.from_json(model_900.to_json())
    np.testing.assert_allclose(again.theta(), model_900.theta())


def test_cell_priors_rank_cells_by_their_hidden_good_rate(corpus_900, model_900):
    """EM never sees the labels, yet its cell priors must order the strategy cells like the
    simulator's truth does (calibration is not asked: the latent class is not the label)."""
    f, y = B.turn_features(corpus_900["train"]), B.hidden_quality(corpus_900["train"])
    n = np.bincount(f.cell, minlength=len(model_900.alpha))
    truth = np.bincount(f.cell, weights=y, minlength=n.size) / np.maximum(n, 1)
    seen = n >= 20
    rho = stats.spearmanr(model_900.theta()[seen], truth[seen]).statistic
    assert seen.sum() >= 15 and rho > 0.4


def test_labels_and_validation_known_values(corpus_900):
    test = corpus_900["test"][:30]
    y = B.hidden_quality(test)
    naive = B.naive_labels(test)
    expected = [
        float(d.outcome == "success") for d in test for t in d.turns if t.speaker == "agent"
    ]
    assert naive.tolist() == expected
    table = B.validate(test, {"oracle": y.astype(float)}, n_boot=50).set_index("metric")
    assert table.loc["auc", "value"] == 1.0 and table.loc["brier", "value"] == 0.0
    with pytest.raises(ValueError, match="no hidden quality"):
        B.hidden_quality(_strip_hidden(test))
    cal = B.calibration_frame(y, {"oracle": y.astype(float)}, bins=10)
    assert set(cal.observed) == {0.0, 1.0} and cal.n.sum() == y.size


def test_em_improves_the_fit():
    calls = simulate_corpus(60, seed=5)
    model = B.fit_turn_quality(calls, em_iterations=30)
    assert 1 < model.iterations <= 30
    assert model.log_likelihood[-1] > model.log_likelihood[0]
    with pytest.raises(ValueError, match="no agent turns"):
        B.fit_turn_quality([])


def test_posteriors_for_caches(tmp_path, smoke_profile):
    prof = dataclasses.replace(
        smoke_profile, paths=dataclasses.replace(smoke_profile.paths, artifacts=str(tmp_path))
    )
    splits = split(simulate_corpus(30, seed=2), seed=0)
    first = B.posteriors_for(prof, splits)
    assert set(first) == {"train", "validation", "test"}
    files = list((tmp_path / "bayes").glob("*/posterior_train.npy"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime
    again = B.posteriors_for(prof, splits)
    np.testing.assert_array_equal(first["test"], again["test"])
    assert files[0].stat().st_mtime == mtime  # loaded, not refitted
    assert B.load_model(prof, splits).n_train == len(first["train"])
