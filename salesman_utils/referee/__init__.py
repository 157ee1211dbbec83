"""The referee: the instruments that score agents, kept apart from the agents (docs/DESIGN.md §1).

- `perception`: how the simulated customer perceives a rep's free-text reply (the intent it hears,
  whether the reply is adapted to this merchant, whether it is faithful), fitted on the HELD-OUT rep
  bank (`data/agent_templates_heldout.yaml`), which no visible corpus turn uses;
- `facts`: the referee's own faithfulness check, a separate, stricter implementation than the
  agent's `world.factcheck`; `degenerate`: replies that say nothing; `answers` and `pushy`: the
  price-question and pushy-merchant checks;
- `audit`: the corpus against its hidden truth; `metrics`: automatic text metrics.

The referee MAY read hidden fields (the merchant's latent decision style, the simulator's state).

Imports: infrastructure, `world/` and `agent/` (the prompts and fallback line of what it scores),
never `judge/`, `arena/` or `report/`. Nothing under `agent/` or `world/` imports it:
`tests/test_boundary.py` walks the import graph and fails if one does.
"""
