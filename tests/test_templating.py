"""SMS templates: sandboxed, checked on save, rendered at send time."""

from __future__ import annotations

import pytest

from collector.templating import TemplateProblem, check, context, money, render


def test_check_renders_sample_and_counts_segments() -> None:
    checked = check(
        "Hi {{ contact.first_name }}, your cart ({{ cart.value | money(cart.currency) }}): {{ link }}"
    )
    assert checked.text == "Hi Alex, your cart ($48.00): https://sms.example.com/r/Ab3dE9xQ"
    assert (checked.encoding, checked.segments, checked.warnings) == ("GSM-7", 1, ())
    assert checked.characters == len(checked.text)


def test_extension_characters_count_double_and_long_texts_warn() -> None:
    checked = check("{{ '€' * 80 }}")
    assert (checked.encoding, checked.characters, checked.segments) == ("GSM-7", 160, 1)
    long = check("x" * 307)
    assert long.segments == 3
    assert "3 segments" in long.warnings[0]
    emoji = check("Hi 🙂")
    assert emoji.encoding == "UCS-2"
    assert any("UCS-2" in w for w in emoji.warnings)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Hi {{ contcat.first_name }}", "unknown variable 'contcat'"),
        ("Hi {{ contact.last_name }}", "line 1: unknown variable 'contact.last_name'"),
        ("Hi\n\n{% if contact.first_name %}", "line 3:"),
        ("{{ cart.__class__.__mro__ }}", "unknown variable 'cart.__class__'"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
        ("{{ range(1000000) | list }}", "could not render"),
        ("{{ 'x' * 5000 }}", "renders to 5000 characters"),
        ("   ", "empty"),
    ],
)
def test_bad_templates_are_refused_with_a_reason(body: str, message: str) -> None:
    with pytest.raises(TemplateProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(body)


def test_missing_values_render_empty_or_their_default() -> None:
    variables = context(first_name=None, site_name="Shop")
    assert render("Hi {{ contact.first_name }}!", variables) == "Hi !"
    assert render("Hi {{ contact.first_name | default('there') }}!", variables) == "Hi there!"
    named = context(first_name="Ann", site_name="Shop")
    assert render("Hi {{ contact.first_name | default('there') }}!", named) == "Hi Ann!"


def test_cart_items_loop_and_count() -> None:
    cart = {
        "items": [{"name": "Tee", "qty": 2, "price": 24}, {"name": "Mug", "qty": 1, "price": 18.5}]
    }
    text = render(
        "{{ cart.count }}:{% for item in cart.items %} {{ item.name }}{% endfor %}",
        context(first_name="A", site_name="S", cart=cart),
    )
    assert text == "3: Tee Mug"


def test_opt_out_wording_is_appended_only_when_missing() -> None:
    variables = context(first_name="A", site_name="S")
    assert render("Come back!", variables, add_opt_out=True) == "Come back! Reply STOP to opt out"
    assert render("Come back! Text STOP to end", variables, add_opt_out=True).endswith("to end")
    assert render("Come back!", variables) == "Come back!"


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (48, "USD", "$48.00"),
        (1234.5, "eur", "€1,234.50"),
        (9.995, "GBP", "£10.00"),
        (5, "CHF", "5.00 CHF"),
        (None, "USD", ""),
    ],
)
def test_money_filter(value: float | None, currency: str, shown: str) -> None:
    assert money(value, currency) == shown
