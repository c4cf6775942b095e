"""Production: obligations and the completeness gate, period inputs, the four steps, deliveries."""

STEPS = ("ventetider", "isf", "gjestepasient", "kjernejournal")
