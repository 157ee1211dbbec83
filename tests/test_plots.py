"""Figures are repeatable: the same inputs draw the same pixels whatever the global RNG state."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from salesman_utils.report import plots  # noqa: E402


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_judge_validation_figure_does_not_depend_on_global_random_state():
    scores = [6.0, 6.2, 5.9, 6.1, 6.0, 6.3, 5.8, 6.2, 6.0, 6.1]
    truth = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    pair = {"wins_a": 0, "wins_b": 0, "ties": 10}
    np.random.seed(1)
    first = _pixels(plots.eval_judge_validation(scores, truth, 0.4, pair))
    np.random.seed(2)
    second = _pixels(plots.eval_judge_validation(scores, truth, 0.4, pair))
    assert first.shape == second.shape
    assert np.array_equal(first, second)
