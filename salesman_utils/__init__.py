"""salesman_utils: the thin package behind the AI-Salesman tutorial notebooks.

One module per concern: config (profiles), models (embedded models), llm (chat backends + cache),
corpus (simulated TeleSalesCorpus), bayes (turn-quality posteriors), rewards and training (GRPO/SFT),
library (script library), doga (the outline-guided agent), judge and metrics (evaluation),
plots, results and report (outputs), run (the papermill runner).
"""

__version__ = "0.1.0"
