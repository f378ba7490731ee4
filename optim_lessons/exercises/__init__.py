"""Self-checks for the chapters' exercises, one module per chapter, named after it."""
