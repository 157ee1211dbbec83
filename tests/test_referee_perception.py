"""The customer's adaptation reader hears a metric or pain in any wording, not only the bank's."""

from __future__ import annotations

import pytest

from salesman_utils.agent.intents import TextEmbedder
from salesman_utils.referee.perception import (
    ConceptReader,
    CustomerPerception,
    adaptation_validation,
    concept_examples,
    load_paraphrases,
)
from salesman_utils.world.simulator import load_banks


@pytest.fixture(scope="module")
def reader():
    return ConceptReader.fit(TextEmbedder(None))


def test_paraphrase_file_never_holds_the_bank_wordings():
    """The reader must not be fitted on the text the templates fill in."""
    bank, para = load_banks()["personas"], load_paraphrases()
    own = {v["label"].lower() for v in bank["metrics"].values()}
    own |= {v["rep"].lower() for v in bank["pain_points"].values()}
    texts, _ = concept_examples("fit")
    assert not [t for t in texts if any(w in t.lower() for w in own)]
    for group in ("metrics", "pain_points"):
        for v in para[group].values():
            assert not set(v["fit"]) & set(v["check"])


def test_reader_reads_held_out_wordings(reader):
    table = reader.validate().set_index("text")
    assert table.loc["fit paraphrases (in-sample)", "concept_accuracy"] > 0.95
    assert table.loc["check paraphrases (held out)", "topic_accuracy"] >= 0.8
    assert table.loc["bank wordings (template text, held out)", "topic_accuracy"] >= 0.9


def test_adapted_reading_does_not_favour_template_wording(reader):
    """Product_Introduction lines adapted by the realizer, in template wording and with the label
    or pain paraphrased: the old word-for-word reading loses most paraphrased ones; the fitted
    reader hears them nearly as often as the template's."""
    perception = CustomerPerception(None, None, reader.embedder, 0, reader)  # type: ignore[arg-type]
    t = adaptation_validation(perception, n_merchants=10, seed=5)
    t = t[t["intent"] == "Product_Introduction"].set_index(["source", "reader"])
    col = "adapted_rate_if_adapted"
    tmpl, para = "visible bank (template wording)", "visible bank, paraphrased"
    assert t.loc[(para, "verbatim"), col] < t.loc[(tmpl, "verbatim"), col] - 0.3
    assert t.loc[(para, "fitted"), col] > t.loc[(para, "verbatim"), col] + 0.2
    assert t.loc[(tmpl, "fitted"), col] - t.loc[(para, "fitted"), col] < 0.25
    assert t.loc[(para, "fitted"), "adapted_rate_if_not"] < 0.25
