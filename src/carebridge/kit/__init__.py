"""Domain-free plumbing: database engines, errors, clock, ids, JSON codec."""
