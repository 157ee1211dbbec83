"""salesman_utils: the thin package behind the AI-Salesman tutorial notebooks.

Folders are the sides of docs/DESIGN.md §1, and say what may import what
(`tests/test_boundary.py` checks it):

- `world/`: the simulated market: simulator, corpus, knowledge base, the visible fact check;
- `agent/`: what decides what the salesperson says: Bayesian supervision, rewards, training, the
  strategy planner, the script library, the intent models, DOGA and its guard;
- `arena/`: where agents meet the customer and are scored: online calls, the planner's
  environment, the offline evaluation;
- `referee/`: the instruments that score agents (may read hidden fields);
- `judge/`: the rubric and the judges, with their validation;
- `report/`: tables, figures and the generated README blocks.

Top-level modules are infrastructure every side uses: `config` (profiles), `models` (embedded
models), `llm` (chat backends and cache), `stats` (intervals), `artifacts`, `banks` (data files)
and `run` (the papermill runner).
"""

__version__ = "0.1.0"
