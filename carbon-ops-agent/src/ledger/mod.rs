//! Tamper-evident ledger: RFC 8785 canonical JSON lines in a SHA-256 hash chain (see issue "Ledger").
