"""The judges: the rubric (six capabilities, seven metrics) and who scores against it.

- `rubric`: criteria, prompts and answer parsers; `llm_judge`: LLM-as-a-judge (G-Eval style local
  scoring, pairwise, OpenAI-compatible APIs); `tokenprobs`: probability-weighted scores from a local
  model; `trained`: the trained offline judge and `checks`, its transparent rule half;
  `validation`: whether a judge's numbers may be used; `humaneval`: the human-rater kit.

Imports: infrastructure, `world/`, `agent/` (prompts to score) and `referee/`; never `arena/` or
`report/` (what a judge sees is built here, in `items`).
"""
