"""The plan catalog: plans, the compute rate, the pool pack and the model price table."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.toml")
PLAN_ORDER = ("hobby", "starter", "pro")


class CatalogError(ValueError):
    """A catalog that cannot be used; names the file, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


@dataclass(frozen=True)
class Plan:
    name: str
    price_micros: int
    included_ms: int
    max_projects: int | None  # None: unlimited
    concurrent_runs: int
    overage: bool
    spend_cap_micros: int | None  # only for plans with overage

    @property
    def rank(self) -> int:
        """Position in the upgrade order; unknown names sort by price after the known ones."""
        return PLAN_ORDER.index(self.name) if self.name in PLAN_ORDER else len(PLAN_ORDER)


@dataclass(frozen=True)
class ModelPrice:
    provider: str
    model: str
    input_micros_per_mtok: int
    output_micros_per_mtok: int


@dataclass(frozen=True)
class PoolPack:
    size_ms: int
    price_micros: int
    valid_days: int


@dataclass(frozen=True)
class Catalog:
    plans: Mapping[str, Plan]
    compute_rate_micros_per_second: int
    pool_pack: PoolPack
    models: Mapping[str, ModelPrice]  # keyed by model name

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise KeyError(f"unknown plan {name!r}; known: {', '.join(self.plans)}") from None

    def is_upgrade(self, old: str, new: str) -> bool:
        a, b = self.plan(old), self.plan(new)
        return (b.price_micros, b.rank) > (a.price_micros, a.rank)


def _int(source: str, table: Mapping[str, Any], key: str, path: str, *, minimum: int = 0,
         required: bool = True) -> int | None:
    if key not in table:
        if required:
            raise CatalogError(source, f"{path}.{key}", "is required")
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError(source, f"{path}.{key}", f"must be an integer, got {value!r}")
    if value < minimum:
        raise CatalogError(source, f"{path}.{key}", f"must be >= {minimum}, got {value}")
    return value


def _table(source: str, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise CatalogError(source, key, "is required and must be a table")
    return value


def parse_catalog(data: Mapping[str, Any], source: str = "<catalog>") -> Catalog:
    """Validate a parsed TOML document and build the catalog; raise CatalogError on the first fault."""
    compute = _table(source, data, "compute")
    rate = _int(source, compute, "rate_micros_per_second", "compute", minimum=0)

    pack = _table(source, data, "pool_pack")
    pool_pack = PoolPack(
        size_ms=_int(source, pack, "hours", "pool_pack", minimum=1) * 3_600_000,
        price_micros=_int(source, pack, "price_micros", "pool_pack"),
        valid_days=_int(source, pack, "valid_days", "pool_pack", minimum=1),
    )

    plans_table = _table(source, data, "plans")
    if not plans_table:
        raise CatalogError(source, "plans", "must define at least one plan")
    plans: dict[str, Plan] = {}
    for name, body in plans_table.items():
        path = f"plans.{name}"
        if not isinstance(body, dict):
            raise CatalogError(source, path, "must be a table")
        overage = body.get("overage", False)
        if not isinstance(overage, bool):
            raise CatalogError(source, f"{path}.overage", f"must be true or false, got {overage!r}")
        cap = _int(source, body, "spend_cap_micros", path, required=False)
        if cap is not None and not overage:
            raise CatalogError(source, f"{path}.spend_cap_micros", "only applies to a plan with overage = true")
        if overage and cap is None:
            raise CatalogError(source, f"{path}.spend_cap_micros", "is required when overage = true")
        unknown = set(body) - {"price_micros", "included_ms", "max_projects", "concurrent_runs",
                               "overage", "spend_cap_micros"}
        if unknown:
            raise CatalogError(source, f"{path}.{sorted(unknown)[0]}", "is not a known plan setting")
        plans[name] = Plan(
            name=name,
            price_micros=_int(source, body, "price_micros", path),
            included_ms=_int(source, body, "included_ms", path),
            max_projects=_int(source, body, "max_projects", path, minimum=1, required=False),
            concurrent_runs=_int(source, body, "concurrent_runs", path, minimum=1),
            overage=overage,
            spend_cap_micros=cap,
        )

    models: dict[str, ModelPrice] = {}
    model_tables = data.get("models", {})
    if not isinstance(model_tables, dict):
        raise CatalogError(source, "models", "must be a table of providers")
    for provider, table in model_tables.items():
        if not isinstance(table, dict):
            raise CatalogError(source, f"models.{provider}", "must be a table of models")
        for model, body in table.items():
            path = f"models.{provider}.{model}"
            if not isinstance(body, dict):
                raise CatalogError(source, path, "must be a table")
            if model in models:
                raise CatalogError(source, path, f"model name also listed under {models[model].provider}")
            models[model] = ModelPrice(
                provider=provider,
                model=model,
                input_micros_per_mtok=_int(source, body, "input_micros_per_mtok", path),
                output_micros_per_mtok=_int(source, body, "output_micros_per_mtok", path),
            )
    return Catalog(
        plans=MappingProxyType(plans),
        compute_rate_micros_per_second=rate,
        pool_pack=pool_pack,
        models=MappingProxyType(models),
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (the shipped default when no path is given)."""
    file = Path(path) if path else DEFAULT_CATALOG_PATH
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(str(file), "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(str(file), "-", f"not valid TOML ({exc})") from None
    return parse_catalog(data, str(file))
