"""Marketer-editable SMS templates: Jinja2 in a sandbox, checked when saved, rendered at send time.

Two kinds of "missing" are told apart on purpose:
- a name the template uses that no text ever has (`{{ contcat.first_name }}`) is an error, found
  when the template is saved and naming the variable;
- a known variable without a value for this recipient (no first name) renders as empty, and
  `{{ contact.first_name | default("there") }}` gives it a fallback, as the contract fixes.

Variables: `contact` (first_name), `site` (name), `event` (url, title), `cart` (items, count,
value, currency, url), `link` (the recipient's tracked short link), and the `money` filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from collector.sms_encoding import analyze

MAX_TEMPLATE_CHARS = 1600
MAX_RENDERED_CHARS = 1600  # ten segments; Vonage advises six at most
WARN_SEGMENTS = 2
OPT_OUT_NOTICE = "Reply STOP to opt out"
OPT_OUT_PATTERN = re.compile(r"\bSTOP\b", re.IGNORECASE)
VARIABLES = {
    "contact": ("first_name",),
    "site": ("name",),
    "event": ("url", "title"),
    "cart": ("items", "count", "value", "currency", "url"),
    "link": (),
}
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$", "INR": "₹"}


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; `line` when the parser knows it."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


def money(value: Any, currency: str | None = None) -> str:
    """`48` → `$48.00`; currencies without a known symbol read `48.00 CHF`."""
    if value is None or isinstance(value, Undefined):
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    code = (currency or "").upper() if not isinstance(currency, Undefined) else ""
    if code in SYMBOLS:
        return f"{SYMBOLS[code]}{amount:,}"
    return f"{amount:,} {code}".strip()


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters["money"] = money
    return env


ENV = _environment()


def _missing(name: str) -> Undefined:
    """A known variable without a value here: renders empty, and `default()` replaces it."""
    return Undefined(name=name)


def context(
    *,
    first_name: str | None,
    site_name: str,
    event_url: str | None = None,
    event_title: str | None = None,
    cart: dict[str, Any] | None = None,
    link: str | None = None,
) -> dict[str, Any]:
    """The variables a template sees, with every known name present."""
    items = (cart or {}).get("items") or []

    def value(raw: Any, name: str) -> Any:
        return _missing(name) if raw in (None, "") else raw

    # Namespaces, not dicts: `cart.items` on a dict would find the dict's items() method.
    return {
        "contact": SimpleNamespace(first_name=value(first_name, "first_name")),
        "site": SimpleNamespace(name=site_name),
        "event": SimpleNamespace(url=value(event_url, "url"), title=value(event_title, "title")),
        "cart": SimpleNamespace(
            items=[SimpleNamespace(**item) for item in items],
            count=sum(int(i.get("qty") or 1) for i in items),
            value=value((cart or {}).get("value"), "value"),
            currency=value((cart or {}).get("currency"), "currency"),
            url=value((cart or {}).get("url"), "url"),
        ),
        "link": value(link, "link"),
    }


SAMPLE = context(
    first_name="Alex",
    site_name="Demo shop",
    event_url="https://shop.example.com/pricing",
    event_title="Pricing",
    cart={
        "items": [{"id": "tee", "name": "Organic tee", "qty": 2, "price": 24.0}],
        "value": 48.0,
        "currency": "USD",
        "url": "https://shop.example.com/cart",
    },
    link="https://sms.example.com/r/Ab3dE9xQ",
)


@dataclass(frozen=True)
class Checked:
    """What the editor shows on save: the sample rendering and what it costs."""

    text: str
    encoding: str
    characters: int
    segments: int
    warnings: tuple[str, ...]


def check(body: str) -> Checked:
    """Parse, check every variable name, and render against sample data; raises TemplateProblem."""
    if not isinstance(body, str) or not body.strip():
        raise TemplateProblem("the template is empty")
    if len(body) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        tree = ENV.parse(body)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES) - set(ENV.globals))
    if unknown:
        raise TemplateProblem(
            f"unknown variable {unknown[0]!r}; use one of {', '.join(sorted(VARIABLES))}"
        )
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in VARIABLES:
            fields = VARIABLES[node.node.name]
            if node.attr not in fields:
                raise TemplateProblem(
                    f"unknown variable '{node.node.name}.{node.attr}'"
                    + (f"; {node.node.name} has {', '.join(fields)}" if fields else ""),
                    node.lineno,
                )
    text = render(body, SAMPLE)
    encoding = analyze(text)
    warnings = []
    if encoding.segments > WARN_SEGMENTS:
        warnings.append(
            f"{encoding.segments} segments ({encoding.characters} characters, {encoding.name}): "
            "each segment is billed; keep it to two"
        )
    if encoding.name == "UCS-2":
        warnings.append("characters outside GSM-7 make the whole text UCS-2 (70 per segment)")
    return Checked(text, encoding.name, encoding.characters, encoding.segments, tuple(warnings))


@lru_cache(maxsize=256)
def _compiled(body: str) -> Template:
    """Jinja compiles a template to Python on every from_string(); a burst of texts shares one."""
    return ENV.from_string(body)


def render(body: str, variables: dict[str, Any], add_opt_out: bool = False) -> str:
    """The text as sent. `add_opt_out` appends the opt-out wording unless the text has it."""
    try:
        text = _compiled(body).render(variables).strip()
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
    except UndefinedError as exc:
        raise TemplateProblem(str(exc.message)) from None
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in templates: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateProblem(f"could not render: {exc}") from None
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateProblem(f"renders to {len(text)} characters; at most {MAX_RENDERED_CHARS}")
    if add_opt_out and not OPT_OUT_PATTERN.search(text):
        text = f"{text} {OPT_OUT_NOTICE}"
    return text
