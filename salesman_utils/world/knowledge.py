"""The product knowledge base: `data/products.yaml` read into `Product` objects.

`load_products()` reads and checks the hand-written knowledge base (a bad entry names the file, the
product and the field); `get_product(id)`; `product_facts_text(product)` renders it compactly for
prompts and judges. What a reply may claim is checked against it by `world.factcheck` (and by the
referee's own `referee.facts`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from salesman_utils.banks import (
    DATA_DIR,
    DataBankError,
    read_yaml,
    require,
    require_list,
    show_path,
)

PRODUCTS_FILE = DATA_DIR / "products.yaml"


@dataclass
class Product:
    """One product of the knowledge base (see data/products.yaml for the field meanings)."""

    id: str
    name: str
    kind: str
    merchant_categories: list[str]
    summary: str
    plans: list[dict[str, Any]]  # {name, price, period, features}
    features: list[str]
    eligibility: list[str]
    promotion: dict[str, str]  # {headline, terms}
    faqs: list[dict[str, str]]  # {q, a}
    forbidden_claims: list[str]
    solves: list[str] = field(default_factory=list)
    platform: str = "Neighborly"

    def kb_text(self) -> str:
        """All the knowledge-base sentences, which define what may be said."""
        parts = [self.summary, *self.features, *self.eligibility]
        for p in self.plans:
            parts.append(f"{p['name']} plan ${p['price']} per {p['period']}")
            parts.extend(p.get("features", []))
        parts += [self.promotion["headline"], self.promotion["terms"]]
        parts += [f"{f['q']} {f['a']}" for f in self.faqs]
        return ". ".join(parts)


_REQUIRED = ("id", "name", "kind", "merchant_categories", "summary", "plans", "features")
_REQUIRED += ("eligibility", "promotion", "faqs", "forbidden_claims")


@lru_cache(maxsize=4)
def _load_products_cached(path: str) -> dict[str, Product]:
    data, name = read_yaml(path), show_path(path)  # DataBankError names the file and line
    known = set(Product.__dataclass_fields__) - {"platform"}
    out: dict[str, Product] = {}
    for i, raw in enumerate(require_list(require(data, ["products"], name)["products"], name)):
        where = f"{name}: products[{i}] ({raw.get('id') if isinstance(raw, dict) else 'no id'})"
        missing = [k for k in _REQUIRED if k not in (raw if isinstance(raw, dict) else {})]
        if missing:
            raise DataBankError(f"{where}: missing field(s) {', '.join(missing)}")
        if set(raw) - known:
            raise DataBankError(f"{where}: unknown field(s) {', '.join(sorted(set(raw) - known))}")
        for j, plan in enumerate(require_list(raw["plans"], f"{where}: plans")):
            priced = isinstance(plan, dict) and isinstance(plan.get("price"), (int, float))
            if not priced or not {"name", "period"} <= set(plan):
                raise DataBankError(f"{where}: plans[{j}]: needs a name, a numeric price, a period")
        require(raw["promotion"], ["headline", "terms"], f"{where}: promotion")
        for j, faq in enumerate(raw["faqs"]):
            require(faq, ["q", "a"], f"{where}: faqs[{j}]")
        out[raw["id"]] = Product(**raw, platform=data.get("platform", "Neighborly"))
    return out


def load_products(path: str | Path = PRODUCTS_FILE) -> dict[str, Product]:
    """The knowledge base as {product_id: Product} (read once, cached)."""
    return dict(_load_products_cached(str(path)))


def get_product(product_id: str) -> Product:
    products = _load_products_cached(str(PRODUCTS_FILE))
    if product_id not in products:
        raise KeyError(f"unknown product_id {product_id!r} (known: {sorted(products)})")
    return products[product_id]


def money(x: float) -> str:
    return f"${x:g}" if float(x) != int(x) else f"${int(x)}"


def product_facts_text(product: Product) -> str:
    """Compact knowledge-base text for prompts (every fact a rep may state, and what is forbidden)."""
    plans = "; ".join(
        f"{p['name']} {money(p['price'])}/{p['period']}"
        + (f" ({', '.join(p['features'])})" if p.get("features") else "")
        for p in product.plans
    )
    faqs = " ".join(f"Q: {f['q']} A: {f['a']}" for f in product.faqs)
    return "\n".join(
        [
            f"Product: {product.name} ({product.kind}) - {product.summary}.",
            f"Plans: {plans}.",
            f"Features: {'; '.join(product.features)}.",
            f"Eligibility: {'; '.join(product.eligibility)}.",
            f"Promotion: {product.promotion['headline']} ({product.promotion['terms']}).",
            f"FAQ: {faqs}",
            f"Never claim: {'; '.join(product.forbidden_claims)}.",
        ]
    )
