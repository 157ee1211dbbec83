"""The agent side: everything that decides what the salesperson says (docs/DESIGN.md §3-6).

Bayesian turn supervision (`bayes`), GRPO rewards, prompts and datasets (`rewards`, `prompts`,
`datasets`), SFT/GRPO training (`training`), the strategy planner (`planner`), the script library
(`library`), the intent models (`intents`), the DOGA agent and its guard (`doga`, `pricing`), what a
DOGA agent is fitted from (`parts`) and the terminal chat (`chat`).

Imports: infrastructure and `world/` only, never `referee/`, `judge/`, `arena/` or `report/`, and
never a hidden field. `tests/test_boundary.py` walks the import graph and fails if one does.
"""
