"""The canonical records keep the dataclass contract with their faster, generated ``__init__``."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from decimal import Decimal

import pytest

from model.records import ENTITIES, CostLine, Rejected


def test_records_are_built_by_keyword_with_source_and_source_id_required() -> None:
    line = CostLine(source="finance:sap", source_id="1000|2026|49|1", amount=Decimal("-12.50"))
    assert (line.source, line.source_id, line.amount, line.currency) == (
        "finance:sap",
        "1000|2026|49|1",
        Decimal("-12.50"),
        None,
    )
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'source_id'"):
        CostLine(source="finance:sap")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'amount_eur'"):
        CostLine(source="s", source_id="1", amount_eur=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        CostLine("s", "1")  # type: ignore[misc]


@pytest.mark.parametrize("cls", [*ENTITIES.values(), Rejected], ids=lambda c: c.__name__)
def test_every_record_class_keeps_its_dataclass_signature(cls: type) -> None:
    params = inspect.signature(cls).parameters
    assert list(params) == [f.name for f in dataclasses.fields(cls)]
    assert all(p.kind is p.KEYWORD_ONLY for p in params.values())


def test_records_stay_frozen_comparable_hashable_replaceable_and_picklable() -> None:
    line = CostLine(source="s", source_id="1", amount=Decimal(3), hours=Decimal(8))
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.amount = Decimal(4)  # type: ignore[misc]
    again = CostLine(source="s", source_id="1", amount=Decimal(3), hours=Decimal(8))
    assert line == again and hash(line) == hash(again) and line is not again
    assert dataclasses.replace(line, amount=Decimal(5)).amount == Decimal(5)
    assert pickle.loads(pickle.dumps(line)) == line
    assert repr(line).startswith(
        "CostLine(source='s', source_id='1', deleted_at=None, deleted_reason=None, posting_date=None"
    )


def test_many_builds_the_same_records_as_keywords_from_columns_and_refuses_what_keywords_refuse() -> None:
    columns = {"source_id": ["1", "2"], "amount": [Decimal("1.50"), None], "currency": ["EUR", "CHF"]}
    built = CostLine.many(2, columns, source="finance:sap", file="a.csv")
    assert built == [
        CostLine(source="finance:sap", source_id="1", amount=Decimal("1.50"), currency="EUR", file="a.csv"),
        CostLine(source="finance:sap", source_id="2", currency="CHF", file="a.csv"),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].amount = Decimal(0)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"CostLine has no fields \['amount_eur'\]"):
        CostLine.many(1, {"source_id": ["1"], "amount_eur": [1]}, source="s")
    with pytest.raises(ValueError, match=r"CostLine.many\(2\): columns \['amount'\] do not hold 2 values"):
        CostLine.many(2, {"source_id": ["1", "2"], "amount": [1]}, source="s")
    with pytest.raises(TypeError, match=r"required fields \['source'\] not given"):
        CostLine.many(1, {"source_id": ["1"]})
