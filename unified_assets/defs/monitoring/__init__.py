"""monitoring: each model's daily health, the KPI scorecard, and the sensors that act on them."""
