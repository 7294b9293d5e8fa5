"""LeadFlow: the shared package of the lead integration layer (built as a Lambda layer)."""

__version__ = "0.1.0"
