"""Line-item arithmetic: exact decimals, rounded once per line to the currency's minor unit.

    line total = (quantity × unit_price − discount) × (1 + tax_rate / 100)   → rounded half-up
    deal amount = Σ line totals

Rounding each line (as an invoice prints it) makes the amount equal the sum of the totals a
client shows. Inputs are kept as the client sent them (decimal strings), so a change of
currency recomputes from them."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from app.domain.deals.schemas import LineItemIn
from app.domain.shared.errors import ValidationError
from app.domain.shared.money import quantize

# Fourteen integer digits, as an Amount: larger sums are refused, never rounded away.
MAX_AMOUNT = Decimal(10) ** 14


def dec_str(value: Decimal) -> str:
    """A decimal as a plain string: '19.99', '3', never '1E+2'."""
    return format(value, "f")


def _line_total(quantity: Decimal, unit_price: Decimal, discount: Decimal, tax_rate: Decimal,
                currency: str, loc: list[str | int]) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80  # exact for every input the schema admits
        gross = quantity * unit_price
        if discount > gross:
            raise ValidationError.at([*loc, "discount"],
                                     "the discount cannot exceed quantity × unit_price")
        total = (gross - discount) * (1 + tax_rate / 100)
        if total >= MAX_AMOUNT:
            raise ValidationError.at(loc, "the line total is too large")
        return quantize(total, currency)


def compute_lines(items: list[LineItemIn], currency: str) -> tuple[list[dict[str, Any]], Decimal]:
    """The stored lines (inputs as strings, plus `total`) and the deal amount."""
    lines: list[dict[str, Any]] = []
    amount = quantize(Decimal(0), currency)
    for index, item in enumerate(items):
        total = _line_total(item.quantity, item.unit_price, item.discount, item.tax_rate,
                            currency, ["body", "line_items", index])
        lines.append({"name": item.name, "sku": item.sku, "quantity": dec_str(item.quantity),
                      "unit_price": dec_str(item.unit_price),
                      "discount": dec_str(item.discount), "tax_rate": dec_str(item.tax_rate),
                      "total": dec_str(total)})
        amount += total
    if amount >= MAX_AMOUNT:
        raise ValidationError.at(["body", "line_items"], "the deal amount is too large")
    return lines, amount


def recompute(lines: list[dict[str, Any]], currency: str) -> tuple[list[dict[str, Any]], Decimal]:
    """Stored lines again, in another currency (its minor unit may differ)."""
    items = [LineItemIn(name=line.get("name"), sku=line.get("sku"),
                        quantity=Decimal(line["quantity"]),
                        unit_price=Decimal(line["unit_price"]),
                        discount=Decimal(line["discount"]), tax_rate=Decimal(line["tax_rate"]))
             for line in lines]
    return compute_lines(items, currency)
