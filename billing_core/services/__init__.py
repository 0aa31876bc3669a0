"""Service functions: each opens its transaction, applies pure rules, writes ledger and activity."""
