"""monitoring layer: drift, label-free estimates, model health, retraining decisions, KPIs,
reports."""
