"""The gradebook: graded submissions and imported scores in one SQLite file."""
