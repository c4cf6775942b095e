"""Quality: the check catalogue (expectations/), its SQL and GX engines, and XPR_ERR feedback."""
