"""End-to-end checks in a real browser (``make e2e``): the pages a coordinator opens."""
