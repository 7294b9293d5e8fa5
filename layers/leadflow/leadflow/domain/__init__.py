"""Pure domain logic: no I/O, no clock of its own (callers pass `now`)."""
