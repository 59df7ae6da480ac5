"""Money: ISO 4217 currencies and decimal amounts rounded to the currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Annotated

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, Field, PlainSerializer


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(value: str) -> str:
    code = value.upper()
    if code not in _currencies():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


@cache
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: 0.01 for EUR, 1 for JPY, 0.001 for KWD."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def quantize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"]),
                     AfterValidator(check_currency)]

# Amounts in: a decimal string (or an integer); never a float's binary approximation.
Amount = Annotated[Decimal, Field(max_digits=20, decimal_places=6, allow_inf_nan=False,
                                  examples=["1250.00"])]
# Amounts out: always a decimal string.
AmountOut = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str,
                                               when_used="json")]
