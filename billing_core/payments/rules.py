"""What money in and out does, as functions of plain state and `now`: what a purchase costs and grants, what a
refund takes back, when an unpaid invoice is retried or the account drops to hobby, when auto top-up charges.

Pure (standard library and billing_core's pure modules only): the providers' adapters and the services that
write the ledger call these and do what they say. Rules: ../shared/DESIGN.md, "Payments".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import Invalid
from ..money import div_round_half_even
from ..plans import Catalog

TOP_UP_MIN_MICROS = 5_000_000        # $5
TOP_UP_MAX_MICROS = 1_000_000_000    # $1,000
PACKS_MIN, PACKS_MAX = 1, 20
MICROS_PER_CENT = 10_000  # providers charge whole cents
PAYABLE_PLANS = ("starter", "pro")
# Dunning: a failed collection is retried this many days after it first failed; unpaid this long, the
# account drops to hobby.
RETRY_DAYS = (1, 3, 5)
DROP_AFTER = timedelta(days=7)
AUTO_TOP_UP_MAX_FAILURES = 3


@dataclass(frozen=True)
class Purchase:
    """One thing a checkout sells, priced: `amount_micros` is what the customer pays."""

    item: str  # credit | pool_pack | plan
    amount_micros: int
    quantity: int = 1
    plan: str | None = None


@dataclass(frozen=True)
class Grant:
    """What a succeeded payment for a purchase gives: credit, one pool, or a plan."""

    credit_micros: int = 0
    pool_ms: int = 0
    pool_valid_days: int = 0
    plan: str | None = None


def _whole_int(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{field} must be an integer.", code=f"invalid_{field}")
    return value


def credit_purchase(amount_micros: object) -> Purchase:
    """A credit top-up of any amount in whole cents from $5 to $1,000 (a provider charges cents)."""
    amount = _whole_int(amount_micros, "amount_micros")
    if not TOP_UP_MIN_MICROS <= amount <= TOP_UP_MAX_MICROS:
        raise Invalid("amount_micros must be between 5000000 ($5) and 1000000000 ($1,000).",
                      code="invalid_amount_micros")
    if amount % MICROS_PER_CENT:
        raise Invalid("amount_micros must be whole cents (a multiple of 10000).", code="invalid_amount_micros")
    return Purchase("credit", amount)


def to_cents(amount_micros: int) -> int:
    """An amount owed in micros as the whole cents a provider charges, rounded half to even."""
    return div_round_half_even(amount_micros, MICROS_PER_CENT)


def charge_micros(amount_micros: int) -> int:
    """What is actually charged for an amount owed: whole cents, back in micros."""
    return to_cents(amount_micros) * MICROS_PER_CENT


def pool_purchase(catalog: Catalog, quantity: object) -> Purchase:
    """1 to 20 of the catalog's pool pack, paid at the pack's price each."""
    count = _whole_int(quantity, "quantity")
    if not PACKS_MIN <= count <= PACKS_MAX:
        raise Invalid(f"quantity must be between {PACKS_MIN} and {PACKS_MAX}.", code="invalid_quantity")
    return Purchase("pool_pack", catalog.pool_pack.price_micros * count, quantity=count)


def plan_purchase(catalog: Catalog, plan: object, *, current_plan: str, proration_micros: int) -> Purchase:
    """An upgrade to a paid plan, charged the prorated difference for the rest of the period
    (invoices.prorate_upgrade); a downgrade or the same plan is not sold, it is scheduled."""
    if plan not in PAYABLE_PLANS or plan not in catalog.plans:
        raise Invalid(f"plan must be one of {', '.join(PAYABLE_PLANS)}.", code="invalid_plan")
    if not catalog.is_upgrade(current_plan, plan):
        raise Invalid(f"{plan} is not an upgrade from {current_plan}; a downgrade takes effect at period end.",
                      code="not_an_upgrade")
    return Purchase("plan", charge_micros(proration_micros), plan=plan)


def grant_for(catalog: Catalog, purchase: Purchase) -> Grant:
    """What the purchase grants once its payment has succeeded; `quantity` packs make one pool of their sum."""
    if purchase.item == "credit":
        return Grant(credit_micros=purchase.amount_micros)
    if purchase.item == "pool_pack":
        pack = catalog.pool_pack
        return Grant(pool_ms=pack.size_ms * purchase.quantity, pool_valid_days=pack.valid_days)
    if purchase.item == "plan":
        return Grant(plan=purchase.plan)
    raise ValueError(f"unknown purchase item {purchase.item!r}")


@dataclass(frozen=True)
class TakeBack:
    """What a refund (or a lost dispute) of `refunded_micros` removes: credit (which may go below zero, as
    debt, where it was spent), time from the pool, and the spent part of the pool's share priced as compute,
    debited as debt."""

    credit_micros: int = 0
    pool_ms: int = 0
    spent_pool_micros: int = 0

    @property
    def debit_micros(self) -> int:
        """Everything this takes from the credit balance."""
        return self.credit_micros + self.spent_pool_micros


def _share(whole: int, part_micros: int, paid_micros: int) -> int:
    return div_round_half_even(whole * part_micros, paid_micros)


def refund_take_back(grant: Grant, *, paid_micros: int, refunded_micros: int, refunded_before_micros: int = 0,
                     pool_remaining_ms: int = 0, rate_micros_per_second: int) -> TakeBack:
    """What a refund of `refunded_micros` takes back, after `refunded_before_micros` of the same payment were
    refunded already: the refunded share of what the payment granted (rounded half to even on the running
    total, so partial refunds that add up to the payment take back exactly all of it)."""
    if not 0 < refunded_micros <= paid_micros - refunded_before_micros or refunded_before_micros < 0:
        raise ValueError("a refund is more than zero and at most what is left of the payment")
    after = refunded_before_micros + refunded_micros
    if grant.credit_micros:
        return TakeBack(credit_micros=_share(grant.credit_micros, after, paid_micros)
                        - _share(grant.credit_micros, refunded_before_micros, paid_micros))
    if grant.pool_ms:
        share_ms = _share(grant.pool_ms, after, paid_micros) - _share(grant.pool_ms, refunded_before_micros,
                                                                       paid_micros)
        removed_ms = min(max(pool_remaining_ms, 0), share_ms)
        spent_micros = div_round_half_even((share_ms - removed_ms) * rate_micros_per_second, 1000)
        return TakeBack(pool_ms=removed_ms, spent_pool_micros=spent_micros)
    return TakeBack()  # a plan: its allowance was the period's; what it paid for is not taken back


def dunning_action(*, first_failed_at: datetime, retries_done: int, now: datetime) -> str | None:
    """For an invoice whose collection failed at `first_failed_at` and was retried `retries_done` times:
    "drop_to_hobby" once it is 7 days unpaid, "retry" when the next retry day has come, else None."""
    if now - first_failed_at >= DROP_AFTER:
        return "drop_to_hobby"
    if retries_done < len(RETRY_DAYS) and now - first_failed_at >= timedelta(days=RETRY_DAYS[retries_done]):
        return "retry"
    return None


@dataclass(frozen=True)
class AutoTopUp:
    """An account's auto top-up settings (GET|PUT /api/v1/billing/auto-top-up)."""

    enabled: bool
    threshold_micros: int
    amount_micros: int
    monthly_limit_micros: int


def check_auto_top_up(settings: AutoTopUp) -> AutoTopUp:
    """The settings when they make sense; Invalid naming the field otherwise."""
    for field in ("threshold_micros", "amount_micros", "monthly_limit_micros"):
        _whole_int(getattr(settings, field), field)
    if settings.threshold_micros < 0:
        raise Invalid("threshold_micros may not be negative.", code="invalid_threshold_micros")
    credit_purchase(settings.amount_micros)  # the same bounds as any top-up
    if settings.monthly_limit_micros < settings.amount_micros:
        raise Invalid("monthly_limit_micros must allow at least one top-up of amount_micros.",
                      code="invalid_monthly_limit_micros")
    return settings


@dataclass(frozen=True)
class TopUpDecision:
    charge_micros: int  # 0: no charge now
    reason: str  # charge | disabled | above_threshold | in_flight | monthly_limit | too_many_failures
    disable: bool = False  # turn auto top-up off (and alert the owner)


def auto_top_up_decision(settings: AutoTopUp, *, credit_micros: int, in_flight: bool, charged_this_month_micros: int,
                         consecutive_failures: int) -> TopUpDecision:
    """Whether to charge the saved method now: below the threshold, none in flight, within the month's limit;
    after 3 failures in a row, never again until the owner turns it back on."""
    if not settings.enabled:
        return TopUpDecision(0, "disabled")
    if consecutive_failures >= AUTO_TOP_UP_MAX_FAILURES:
        return TopUpDecision(0, "too_many_failures", disable=True)
    if credit_micros >= settings.threshold_micros:
        return TopUpDecision(0, "above_threshold")
    if in_flight:
        return TopUpDecision(0, "in_flight")
    if charged_this_month_micros + settings.amount_micros > settings.monthly_limit_micros:
        return TopUpDecision(0, "monthly_limit")
    return TopUpDecision(settings.amount_micros, "charge")


def top_up_idempotency_key(account_id: str, attempt: int) -> str:
    """One key per attempt: a retried request of the same attempt is one charge at the provider."""
    return f"tollgate-topup-{account_id}-{attempt}"
