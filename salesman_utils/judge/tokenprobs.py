"""Probability-weighted scores from a local model (G-Eval style): P(the assistant writes exactly
"1", ..., "10" next), read from next-token log-probabilities, and their expected value.

`score_probs` walks the labels as a token trie (SmolLM2 writes "10" as "1" + "0"); with a local
transformers backend `_fused_probs` reads both levels from one forward pass and shares the prompt
text before a split marker between prompts (`_tail_logprobs`, KV cache reuse). Used by
`salesman_utils.judge.llm_judge`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from salesman_utils.judge.rubric import SCORE_LABELS
from salesman_utils.llm import message_chars


def _pieces(backend: Any, label: str) -> list[str]:
    """The token strings `label` is written with; one per character without a tokenizer."""
    tok = getattr(backend, "tokenizer", None)
    if tok is None:
        return list(label)
    pieces = [tok.decode([i]) for i in tok.encode(label, add_special_tokens=False)]
    for p in pieces:  # score_next_tokens reads a candidate's first token: each must be one token
        if len(tok.encode(p, add_special_tokens=False)) != 1:
            raise ValueError(f"label {label!r}: piece {p!r} is not a single token")
    return pieces


def score_probs(
    backend: Any,
    batch: Sequence[list[dict[str, str]]],
    prefix: str = "",
    labels: Sequence[str] = SCORE_LABELS,
    prune_below: float = 1e-4,
    fused: bool = True,
    split_marker: str | None = None,
) -> np.ndarray:
    """P(the assistant, after `prefix`, writes exactly `label`), shape (len(batch), len(labels)).

    Labels are walked as a trie of tokens, one batched `score_next_tokens` pass per trie node.
    With SmolLM2 ("10" = "1","0"): P("10") = P("1") P("0" | "1") and
    P("1") = P("1") (1 - P("0" | "1")). The second pass only runs for rows where P("1") >=
    `prune_below` (below it, "1" and "10" change the expected score by less than 1e-3).
    With a local transformers backend and `fused`, both levels come from ONE forward pass over
    ``prefix + "1"`` (`_fused_probs`): same numbers, half the compute; prompts that share the text
    before `split_marker` also share its computation.
    Rows are not normalised: the row sum is the mass on valid labels.
    """
    n = len(batch)
    seqs = {lab: tuple(_pieces(backend, lab)) for lab in labels}
    internal = sorted({s[:d] for s in seqs.values() for d in range(len(s))}, key=len)
    kids = {
        node: sorted(
            {s[len(node)] for s in seqs.values() if len(s) > len(node) and s[: len(node)] == node}
        )
        for node in internal
    }
    order = np.argsort([message_chars(msgs) for msgs in batch], kind="stable")
    sorted_batch = [batch[i] for i in order]  # similar lengths together: less padding per chunk
    cond: dict[tuple[str, ...], np.ndarray] = {}
    if (
        fused
        and n
        and len(internal) <= 2
        and hasattr(backend, "model")
        and hasattr(backend, "tokenizer")
    ):
        cond = _fused_probs(backend, sorted_batch, prefix, internal[1:], kids, split_marker)
    reach: dict[tuple[str, ...], np.ndarray] = {(): np.ones(n)}
    cont: dict[tuple[str, ...], np.ndarray] = {}
    for node in internal:
        p = cond.get(node)
        if p is None:
            p = np.zeros((n, len(kids[node])))
            rows = np.flatnonzero(reach[node] >= (prune_below if node else 0.0))
            if rows.size:
                res = backend.score_next_tokens(
                    [sorted_batch[r] for r in rows], kids[node], prefix + "".join(node)
                )
                p[rows] = np.exp([[d[k] for k in kids[node]] for d in res])
        for j, k in enumerate(kids[node]):
            reach[node + (k,)] = reach[node] * p[:, j]
        cont[node] = p.sum(axis=1)
    out = np.zeros((n, len(labels)))
    for j, lab in enumerate(labels):
        s = seqs[lab]
        stop = 1.0 - cont[s] if s in cont else 1.0  # a label that prefixes another must end here
        out[:, j] = reach[s] * np.clip(stop, 0.0, 1.0)
    unsorted = np.empty_like(out)
    unsorted[order] = out
    return unsorted


def _fused_probs(
    backend: Any,
    batch: Sequence[list[dict[str, str]]],
    prefix: str,
    inner: Sequence[tuple[str, ...]],
    kids: Mapping[tuple[str, ...], Sequence[str]],
    split_marker: str | None = None,
) -> dict[tuple[str, ...], np.ndarray]:
    """Next-token probabilities at the root and (if any) at one depth-1 node of the label trie,
    from a single forward pass over ``template + prefix + node`` (positions -2 and -1), sharing
    the computation of the text before `split_marker` between prompts (`_tail_logprobs`).
    Cached in the backend's cache, one entry per prompt."""
    from tqdm.auto import tqdm

    tok, model, cache = backend.tokenizer, backend.model, getattr(backend, "cache", None)
    node = inner[0] if inner else ()
    ext = "".join(node)
    if ext and tok.encode(prefix + ext, add_special_tokens=False)[:-1] != tok.encode(
        prefix, add_special_tokens=False
    ):
        return {}  # `node` merges with the prefix's last token: positions would not line up
    nodes = [(), *inner]
    cands = [(nd, c) for nd in nodes for c in kids[nd]]
    cand_ids = [tok.encode(c, add_special_tokens=False)[0] for _, c in cands]
    ident = backend.identity() if hasattr(backend, "identity") else {"name": backend.name}
    spec = {"prefix": prefix, "node": ext, "kids": {"".join(k): v for k, v in kids.items()}}
    keys = [
        hashlib.sha256(
            json.dumps(
                {"id": ident, "messages": m, **spec, "op": "judge_fused_v1"}, sort_keys=True
            ).encode()
        ).hexdigest()
        for m in batch
    ]
    done = cache.get_many(keys) if cache is not None else {}
    texts = {
        i: tok.apply_chat_template(batch[i], tokenize=False, add_generation_prompt=True)
        + prefix
        + ext
        for i, k in enumerate(keys)
        if k not in done
    }
    # prompts sharing a head next to each other, so that a chunk holds whole groups
    todo = sorted(texts, key=lambda i: _head(texts[i], split_marker))
    step = max(1, int(getattr(getattr(backend, "spec", None), "batch_size", 8)))
    chunk = step * 8
    with tqdm(total=len(todo), desc="judging", disable=not todo) as bar:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            logp = _tail_logprobs(model, tok, [texts[i] for i in idx], cand_ids, step, split_marker)
            new = {}
            for row, i in enumerate(idx):
                pos = {(): -2 if ext else -1, node: -1}
                new[keys[i]] = {
                    "".join(nd): [
                        float(logp[row, pos[nd], j]) for j, (n2, _) in enumerate(cands) if n2 == nd
                    ]
                    for nd in nodes
                }
            if cache is not None:
                cache.put_many(new)
            done.update(new)
            bar.update(len(idx))
    return {nd: np.exp(np.array([done[k]["".join(nd)] for k in keys], dtype=float)) for nd in nodes}


def _head(text: str, marker: str | None) -> str:
    cut = text.rfind(marker) if marker else -1
    return text[:cut] if cut > 0 else ""


def _tail_logprobs(
    model: Any,
    tok: Any,
    texts: Sequence[str],
    cand_ids: Sequence[int],
    batch_size: int,
    split_marker: str | None = None,
) -> np.ndarray:
    """Log-softmax at the last two positions of each text, at `cand_ids`: shape (n, 2, k).

    Texts whose token ids start with the ids of their head (the text before `split_marker`)
    share it: each distinct head runs once with its KV cache kept, and every tail continues from
    it (all the metric prompts of an item share the context and the reply: ~2-3x less compute).
    The ids are those of the whole text, so the numbers equal a plain forward pass."""
    import torch

    out = np.zeros((len(texts), 2, len(cand_ids)))
    full = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    head_ids: dict[str, list[int]] = {}
    groups: dict[str, list[int]] = {}
    plain: list[int] = []
    for r, t in enumerate(texts):
        h = _head(t, split_marker)
        if h and h not in head_ids:
            head_ids[h] = tok(h, add_special_tokens=False)["input_ids"]
        ids = head_ids.get(h, [])
        ok = ids and len(full[r]) - len(ids) >= 2 and full[r][: len(ids)] == ids
        (groups.setdefault(h, []) if ok else plain).append(r)
    cand = torch.tensor(list(cand_ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0

    def left_pad(seqs: list[list[int]]) -> tuple[Any, Any]:
        width = max(len(x) for x in seqs)
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in seqs], device=model.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in seqs])
        return ids, mask.to(model.device)

    def run(**kw: Any) -> Any:
        try:
            return model(**kw, logits_to_keep=2)
        except TypeError:  # an architecture without logits_to_keep
            return model(**kw)

    with torch.inference_mode():
        for start in range(0, len(plain), batch_size):
            rows = plain[start : start + batch_size]
            ids, mask = left_pad([full[r] for r in rows])
            pos = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real positions
            logits = run(input_ids=ids, attention_mask=mask, position_ids=pos).logits
            out[rows] = torch.log_softmax(logits[:, -2:].float(), -1)[..., cand].cpu().numpy()
        heads = list(groups)
        for start in range(0, len(heads), batch_size):
            chunk = heads[start : start + batch_size]
            ids, mask = left_pad([head_ids[h] for h in chunk])
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            past = run(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            past = past.past_key_values
            tails: dict[tuple[int, ...], dict[int, int]] = {}  # tail ids -> {head index: row}
            for j, h in enumerate(chunk):
                for r in groups[h]:
                    tails.setdefault(tuple(full[r][len(head_ids[h]) :]), {})[j] = r
            lengths = mask.sum(-1, keepdim=True)
            for tail, rows_of in tails.items():
                n_tail = len(tail)
                t_ids = torch.tensor([list(tail)] * len(chunk), device=model.device)
                t_mask = torch.cat([mask, torch.ones_like(t_ids)], dim=1)
                t_pos = lengths + torch.arange(n_tail, device=model.device)
                logits = run(
                    input_ids=t_ids,
                    attention_mask=t_mask,
                    position_ids=t_pos,
                    past_key_values=past,
                    use_cache=True,
                ).logits
                past.crop(-n_tail)  # back to the head for the next tail
                lp = torch.log_softmax(logits[:, -2:].float(), -1)[..., cand].cpu().numpy()
                for j, r in rows_of.items():
                    out[r] = lp[j]
    return out


def expected_score(probs: np.ndarray, labels: Sequence[str] = SCORE_LABELS) -> np.ndarray:
    """Probability-weighted mean of the numeric labels per row (renormalised); NaN if no mass."""
    probs = np.atleast_2d(np.asarray(probs, dtype=float))
    values = np.array([float(x) for x in labels])
    mass = probs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass > 0, probs @ values / mass, np.nan)
