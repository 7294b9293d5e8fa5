"""LeadFlow local runtime: the whole stack on one machine (moto, HTTP adapter, stream delivery)."""
