"""The world: the simulated market the agents sell into (docs/DESIGN.md §2).

- `simulator`: the latent-state customer, personas and call simulation (reads and writes hidden
  fields: it IS the ground truth);
- `corpus`: the TeleSalesCorpus-style corpus built from it (LLM realization, filtering, splits);
- `knowledge`: the product knowledge base (`data/products.yaml`);
- `factcheck`: the visible fact check of a sales turn against the knowledge base and the dashboard.
  It lives here because the world uses it (the simulator records what it finds and plants only
  errors it can see); the agent uses the same check as its guard. The referee has its own
  (`referee.facts`).

Imports: infrastructure only (the top-level modules). `tests/test_boundary.py` checks it.
"""
