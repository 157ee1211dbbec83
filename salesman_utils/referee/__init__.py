"""The referee: the instruments that score agents, kept apart from the agents (docs/DESIGN.md §1).

The referee is how the simulated customer perceives a rep's free-text reply (`perception`: the
intent it hears, whether the reply is adapted to this merchant, whether it is faithful) and the
referee's own faithfulness check (`facts`), a separate, stricter implementation than the guard's
`factcheck.fact_check`; the degenerate-reply detector (`degenerate`), the price-question and
pushy-merchant checks (`answers`, `pushy`). Its perception models are fitted on the HELD-OUT rep bank
(`data/agent_templates_heldout.yaml`), which no visible corpus turn uses.

The referee MAY read hidden fields (the merchant's latent decision style, the simulator's state).
Agents, training and the script library must NEVER import it (nor `audit`, `evaluation`, `judge`,
`metrics`, `rubric`, `tokenprobs`, `humaneval`): `tests/test_boundary.py` walks the import graph
and fails if they do. `online` is the arena where both sides meet.
"""
