from pathlib import Path

from sendwise.warehouse.docs import data_model_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_data_model_doc_matches_schema() -> None:
    doc = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert doc == data_model_markdown(), (
        "run: python -m sendwise.warehouse.docs > docs/data-model.md"
    )


def test_features_doc_matches_code() -> None:
    from sendwise.features.docs import features_markdown

    doc = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    assert doc == features_markdown(), "run: python -m sendwise.features.docs > docs/features.md"
