"""Use cases joining domain, store and outbound clients (capture, leads, and later qualify, push, ...)."""
