"""The staff console and the HTTP API (``allocator serve``)."""
