-- Tables the Tollgate edge sync writes in Cloudflare D1 (target `cloudflare_d1`; contract: docs/edge-sync.md).
-- Apply once before enabling the target:
--   wrangler d1 execute <database> --remote --file docs/edge-d1.sql
-- The sync writes with INSERT ... ON CONFLICT DO UPDATE and DELETE; it never changes this schema.
-- Column names are the field names of the item values; JSON columns hold JSON text.

-- key:<sha256>  An active account key, by the SHA-256 (hex) of the full key string.
CREATE TABLE IF NOT EXISTS edge_keys (
    key_hash   TEXT PRIMARY KEY,       -- lowercase hex SHA-256 of the UTF-8 key `ak_live_...`
    account_id TEXT NOT NULL,
    project_id TEXT,                   -- NULL: the key is valid for every project of the account
    scopes     TEXT NOT NULL,          -- JSON array of strings, e.g. ["*"]
    status     TEXT NOT NULL,          -- always "active": revoked keys are deleted
    expires_at TEXT                    -- RFC 3339 UTC; refuse the key from then on. NULL: never expires
);
-- A database made before key expiry (Tollgate migration 0008) needs, once:
--   ALTER TABLE edge_keys ADD COLUMN expires_at TEXT;
CREATE INDEX IF NOT EXISTS edge_keys_account ON edge_keys (account_id);

-- account:<id>  What the edge enforces for an account.
CREATE TABLE IF NOT EXISTS edge_accounts (
    account_id             TEXT PRIMARY KEY,
    status                 TEXT NOT NULL,     -- active | over_limit | suspended
    plan                   TEXT NOT NULL,
    remaining_allowance_ms INTEGER NOT NULL,  -- plan allowance left in the current period
    pool_ms                INTEGER NOT NULL,  -- compute left in live pre-paid pools
    credit_micros          INTEGER NOT NULL,  -- credit balance in micro-USD; negative is debt
    overage_micros         INTEGER NOT NULL,  -- overage accrued this period (plans with overage)
    spend_cap_micros       INTEGER,           -- NULL: the plan has no overage
    concurrency_limit      INTEGER NOT NULL,  -- concurrent runs the plan allows
    period_end             TEXT NOT NULL,     -- RFC 3339 UTC; the allowance resets then
    as_of                  TEXT NOT NULL      -- RFC 3339 UTC: when the portal read these values
);

-- project:<id>  A live project and the fingerprints of its valid HMAC keys.
CREATE TABLE IF NOT EXISTS edge_projects (
    project_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,          -- always "active": deleted projects are deleted
    hmac_keys  TEXT NOT NULL           -- JSON array of {"sha256": hex, "valid_until": RFC 3339 | null}
);
CREATE INDEX IF NOT EXISTS edge_projects_account ON edge_projects (account_id);
