"""The pure heart of billing_core imports no adapter, and its data is frozen."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

import billing_core

PACKAGE_DIR = Path(billing_core.__file__).resolve().parent
PURE_MODULES = ("money", "plans", "pricing", "drawdown", "status", "periods", "invoices", "keys", "ids", "errors",
                "forecast", "alerts", "sync.plan", "payments.rules", "payments.provider", "key_limits", "gateway.models",
                "gateway.estimate", "gateway.holds", "gateway.windows", "gateway.usage", "gateway.translate_request",
                "gateway.translate_response", "gateway.translate_stream")
FORBIDDEN_IN_PURE = ("reflex", "sqlmodel", "sqlalchemy", "httpx", "apscheduler", "fastapi", "pydantic", "portal",
                     "billing_core.db", "billing_core.services")
FORBIDDEN_IN_PACKAGE = ("reflex", "portal")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a (possibly relative) `from ... import` refers to."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def imported_names(source: str, importer: str, *, is_package: bool = False) -> set[str]:
    """Every module a source may import: import statements, relative ones resolved, and
    `from pkg import name` counted as `pkg.name` too (the name may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, importer, is_package)
            names.add(base)
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
        elif isinstance(node, ast.Call):  # importlib.import_module("x") / __import__("x")
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def forbidden_imports(source: str, importer: str, forbidden: tuple[str, ...], *, is_package: bool = False) -> list[str]:
    return sorted(name for name in imported_names(source, importer, is_package=is_package)
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


# --- the walker can fail ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "expected"), [
    ("import sqlalchemy\n", ["sqlalchemy"]),
    ("from sqlalchemy.orm import Session\n", ["sqlalchemy.orm", "sqlalchemy.orm.Session"]),
    ("def f():\n    import httpx\n", ["httpx"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pydantic import BaseModel\n",
     ["pydantic", "pydantic.BaseModel"]),
    ("from .db import models\n", ["billing_core.db", "billing_core.db.models"]),
    ("from . import services\n", ["billing_core.services"]),
    ("from .services.usage import record\n", ["billing_core.services.usage", "billing_core.services.usage.record"]),
    ("import billing_core.db.engine as e\n", ["billing_core.db.engine"]),
    ("import importlib\nimportlib.import_module('reflex')\n", ["reflex"]),
    ("from portal.settings import Settings\n", ["portal.settings", "portal.settings.Settings"]),
    ("from .money import round_micros\nimport decimal\n", []),
    ("from .dbutils import x\nimport reflexive\n", []),
])
def test_the_walker_flags_a_synthetic_forbidden_import(source, expected):
    assert forbidden_imports(source, "billing_core.money", FORBIDDEN_IN_PURE) == expected


def test_relative_imports_resolve_from_a_subpackage():
    assert forbidden_imports("from ..services import usage\n", "billing_core.db.models", FORBIDDEN_IN_PURE) \
        == ["billing_core.services", "billing_core.services.usage"]
    assert "billing_core.db.models" in imported_names("from .models import X\n", "billing_core.db", is_package=True)


# --- the real code ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_adapter(module):
    path = PACKAGE_DIR / f"{module.replace('.', '/')}.py"  # "sync.plan" lives in billing_core/sync/
    assert path.is_file(), f"pure module {path} is missing"
    found = forbidden_imports(path.read_text(encoding="utf-8"), f"billing_core.{module}", FORBIDDEN_IN_PURE)
    assert found == [], f"billing_core/{module}.py imports {found}"


def test_billing_core_never_imports_reflex_or_portal():
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) > len(PURE_MODULES)  # the walk really covers the package, adapters included
    offenders = {}
    for path in files:
        found = forbidden_imports(path.read_text(encoding="utf-8"), _module_name(path), FORBIDDEN_IN_PACKAGE,
                                  is_package=path.name == "__init__.py")
        if found:
            offenders[str(path.relative_to(PACKAGE_DIR.parent))] = found
    assert offenders == {}


# --- frozen dataclasses ---------------------------------------------------------------------------------------

PUBLIC_DATACLASSES = [
    ("drawdown", "Balances"), ("drawdown", "PoolBalance"), ("drawdown", "Charge"), ("periods", "Period"),
    ("invoices", "InvoiceDraft"), ("invoices", "InvoiceLine"), ("plans", "Plan"), ("plans", "Catalog"),
    ("plans", "ModelPrice"), ("plans", "PoolPack"), ("status", "CheckResult"), ("pricing", "TokenCost"),
    ("keys", "StoredKey"), ("alerts", "Thresholds"), ("alerts", "Measures"), ("alerts", "Alert"),
    ("sync.plan", "SyncPlan"),
]


@pytest.mark.parametrize(("module", "name"), PUBLIC_DATACLASSES, ids=[n for _, n in PUBLIC_DATACLASSES])
def test_public_dataclass_is_frozen(module, name):
    cls = getattr(importlib.import_module(f"billing_core.{module}"), name)
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen, f"{module}.{name} is not frozen"


def test_every_dataclass_in_the_pure_modules_is_frozen():
    unfrozen = []
    for module in PURE_MODULES:
        mod = importlib.import_module(f"billing_core.{module}")
        for value in vars(mod).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == mod.__name__ \
                    and not value.__dataclass_params__.frozen:
                unfrozen.append(f"{module}.{value.__name__}")
    assert unfrozen == []


def test_assigning_to_a_frozen_instance_fails():
    from billing_core.keys import stored_form
    from billing_core.status import CheckResult

    result = CheckResult(True, "ok")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.allowed = False  # type: ignore[misc]
    stored = stored_form("ak_live_" + "0" * 38)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.key_hash = "x"  # type: ignore[misc]
