"""The plan catalog: the shipped file matches DESIGN.md, and a bad file says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_core.plans import DEFAULT_CATALOG_PATH, Catalog, CatalogError, load_catalog, parse_catalog

SHIPPED = load_catalog()

# A small, valid catalog; each bad case below changes one thing in it.
VALID_TOML = """\
[compute]
rate_micros_per_second = 100

[pool_pack]
hours = 10
price_micros = 3_000_000
valid_days = 365

[plans.hobby]
price_micros = 0
included_ms = 3_600_000
max_projects = 3
concurrent_runs = 1
overage = false

[plans.pro]
price_micros = 100_000_000
included_ms = 720_000_000
concurrent_runs = 20
overage = true
spend_cap_micros = 500_000_000

[models.anthropic.claude-sonnet-4]
input_micros_per_mtok = 3_000_000
output_micros_per_mtok = 15_000_000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped catalog is DESIGN.md's table ------------------------------------------------------------

@pytest.mark.parametrize(("name", "price_micros", "included_ms", "max_projects", "concurrent_runs", "overage",
                          "spend_cap_micros"), [
    ("hobby", 0, 1 * 3_600_000, 3, 1, False, None),
    ("starter", 20_000_000, 20 * 3_600_000, 10, 5, False, None),
    ("pro", 100_000_000, 200 * 3_600_000, None, 20, True, 500_000_000),
])
def test_shipped_plans_match_the_design_table(name, price_micros, included_ms, max_projects, concurrent_runs,
                                              overage, spend_cap_micros):
    plan = SHIPPED.plan(name)
    assert plan.name == name
    assert plan.price_micros == price_micros
    assert plan.included_ms == included_ms
    assert plan.max_projects == max_projects
    assert plan.concurrent_runs == concurrent_runs
    assert plan.overage is overage
    assert plan.spend_cap_micros == spend_cap_micros


def test_shipped_catalog_has_exactly_the_three_plans():
    assert set(SHIPPED.plans) == {"hobby", "starter", "pro"}


def test_shipped_compute_rate_is_100_micros_per_second():
    assert SHIPPED.compute_rate_micros_per_second == 100


def test_shipped_pool_pack_is_ten_hours_for_three_dollars_valid_a_year():
    assert SHIPPED.pool_pack.size_ms == 10 * 3_600_000
    assert SHIPPED.pool_pack.price_micros == 3_000_000
    assert SHIPPED.pool_pack.valid_days == 365


def test_shipped_model_prices_are_the_design_table_in_micros_per_million_tokens():
    table = {m.model: (m.provider, m.input_micros_per_mtok, m.output_micros_per_mtok)
             for m in SHIPPED.models.values()}
    assert table == {
        "claude-opus-4": ("anthropic", 15_000_000, 75_000_000),
        "claude-sonnet-4": ("anthropic", 3_000_000, 15_000_000),
        "claude-haiku-4": ("anthropic", 1_000_000, 5_000_000),
        "gpt-4o": ("openai", 2_500_000, 10_000_000),
        "gpt-4o-mini": ("openai", 150_000, 600_000),
    }
    assert all(key == price.model for key, price in SHIPPED.models.items())


def test_loading_without_a_path_reads_the_shipped_file():
    assert load_catalog() == load_catalog(DEFAULT_CATALOG_PATH)


def test_catalog_mappings_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        SHIPPED.plans["free"] = SHIPPED.plan("hobby")  # type: ignore[index]
    with pytest.raises(TypeError):
        SHIPPED.models["gpt-5"] = SHIPPED.models["gpt-4o"]  # type: ignore[index]


def test_valid_minimal_catalog_loads(tmp_path):
    catalog = load_catalog(write(tmp_path, VALID_TOML))
    assert isinstance(catalog, Catalog)
    assert set(catalog.plans) == {"hobby", "pro"}
    assert catalog.plan("pro").max_projects is None


def test_unknown_plan_name_is_a_key_error_naming_the_known_plans():
    with pytest.raises(KeyError, match="enterprise.*hobby"):
        SHIPPED.plan("enterprise")


# --- is_upgrade ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "upgrade"), [
    ("hobby", "starter", True), ("hobby", "pro", True), ("starter", "pro", True),
    ("starter", "hobby", False), ("pro", "hobby", False), ("pro", "starter", False),
    ("hobby", "hobby", False), ("starter", "starter", False), ("pro", "pro", False),
])
def test_upgrades_go_up_the_plan_order(old, new, upgrade):
    assert SHIPPED.is_upgrade(old, new) is upgrade


def test_is_upgrade_rejects_an_unknown_plan():
    with pytest.raises(KeyError):
        SHIPPED.is_upgrade("hobby", "enterprise")


def test_is_upgrade_orders_by_price_and_breaks_price_ties_by_plan_order(tmp_path):
    text = VALID_TOML.replace("price_micros = 100_000_000", "price_micros = 0") + """
[plans.team]
price_micros = 50_000_000
included_ms = 1
concurrent_runs = 1
"""
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.is_upgrade("hobby", "pro")  # same price, pro ranks higher
    assert not catalog.is_upgrade("pro", "hobby")
    assert catalog.is_upgrade("pro", "team")  # unknown name, higher price
    assert not catalog.is_upgrade("team", "hobby")


# --- bad catalogs name the file, the key and the reason ---------------------------------------------------

def _drop(line: str):
    def change(text: str) -> str:
        assert line in text
        return text.replace(line + "\n", "", 1)
    return change


def _sub(old: str, new: str):
    def change(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)
    return change


def _add(extra: str):
    return lambda text: text + extra


BAD_CASES = [
    ("missing compute rate", _drop("rate_micros_per_second = 100"),
     "compute.rate_micros_per_second", "is required"),
    ("missing compute table", _sub("[compute]\nrate_micros_per_second = 100\n", ""), "compute", "table"),
    ("missing pool pack table", _sub("[pool_pack]\n", "[pool_packs]\n"), "pool_pack", "table"),
    ("missing plan price", _drop("price_micros = 0"), "plans.hobby.price_micros", "is required"),
    ("missing concurrent runs", _drop("concurrent_runs = 20"), "plans.pro.concurrent_runs", "is required"),
    ("missing model price", _drop("output_micros_per_mtok = 15_000_000"),
     "models.anthropic.claude-sonnet-4.output_micros_per_mtok", "is required"),
    ("price as text", _sub("price_micros = 0", 'price_micros = "0"'), "plans.hobby.price_micros",
     "must be an integer"),
    ("included time as float", _sub("included_ms = 3_600_000", "included_ms = 3600.5"),
     "plans.hobby.included_ms", "must be an integer"),
    ("boolean where a number belongs", _sub("concurrent_runs = 1", "concurrent_runs = true"),
     "plans.hobby.concurrent_runs", "must be an integer"),
    ("overage as text", _sub("overage = true", 'overage = "yes"'), "plans.pro.overage",
     "must be true or false"),
    ("plan that is not a table", _add("[plans]\nbasic = 5\n"), "plans.basic", "must be a table"),
    ("negative plan price", _sub("price_micros = 0", "price_micros = -1"), "plans.hobby.price_micros",
     "must be >= 0"),
    ("negative compute rate", _sub("rate_micros_per_second = 100", "rate_micros_per_second = -100"),
     "compute.rate_micros_per_second", "must be >= 0"),
    ("negative spend cap", _sub("spend_cap_micros = 500_000_000", "spend_cap_micros = -5"),
     "plans.pro.spend_cap_micros", "must be >= 0"),
    ("negative model price", _sub("input_micros_per_mtok = 3_000_000", "input_micros_per_mtok = -3"),
     "models.anthropic.claude-sonnet-4.input_micros_per_mtok", "must be >= 0"),
    ("zero pool hours", _sub("hours = 10", "hours = 0"), "pool_pack.hours", "must be >= 1"),
    ("zero concurrent runs", _sub("concurrent_runs = 1", "concurrent_runs = 0"),
     "plans.hobby.concurrent_runs", "must be >= 1"),
    ("unknown plan setting", _sub("max_projects = 3", "max_project = 3"), "plans.hobby.max_project",
     "is not a known plan setting"),
    ("spend cap without overage", _sub("overage = false", "overage = false\nspend_cap_micros = 1"),
     "plans.hobby.spend_cap_micros", "only applies to a plan with overage"),
    ("overage without a cap", _drop("spend_cap_micros = 500_000_000"), "plans.pro.spend_cap_micros",
     "is required when overage = true"),
    ("no plans at all", lambda t: t.split("[plans.hobby]")[0] + "[plans]\n", "plans",
     "at least one plan"),
    ("same model under two providers", _add("[models.openai.claude-sonnet-4]\ninput_micros_per_mtok = 1\n"
                                            "output_micros_per_mtok = 1\n"),
     "models.openai.claude-sonnet-4", "also listed under anthropic"),
    ("provider that is not a table", _add("[models]\nopenai = 5\n"), "models.openai", "must be a table"),
    ("invalid TOML", _add("[plans.hobby\n"), "-", "not valid TOML"),
]


@pytest.mark.parametrize(("change", "key", "reason"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_catalog_raises_catalog_error_naming_file_key_and_reason(tmp_path, change, key, reason):
    path = write(tmp_path, change(VALID_TOML))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    error = caught.value
    assert error.source == str(path)
    assert error.key == key
    assert reason in error.reason
    assert str(path) in str(error) and key in str(error) and reason in str(error)


def test_missing_catalog_file_raises_catalog_error_naming_the_file(tmp_path):
    path = tmp_path / "nowhere" / "catalog.toml"
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    assert caught.value.reason == "file not found"


def test_catalog_error_is_a_value_error():
    assert issubclass(CatalogError, ValueError)


def test_parse_catalog_names_the_given_source():
    with pytest.raises(CatalogError) as caught:
        parse_catalog({}, "operator-catalog.toml")
    assert caught.value.source == "operator-catalog.toml"
    assert caught.value.key == "compute"


@pytest.mark.parametrize("models_line", ['models = "none"', "models = [1, 2]"])
def test_models_that_are_not_a_table_raise_catalog_error(tmp_path, models_line):
    path = write(tmp_path, models_line + "\n" + VALID_TOML.split("[models.")[0])
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert caught.value.key == "models"
