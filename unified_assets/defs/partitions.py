"""Partitions shared by the daily tables: one partition per landing day."""

import dagster as dg

from unified_assets.lib.core.config import FIRST_DAY

daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat())
single_run = dg.BackfillPolicy.single_run()
