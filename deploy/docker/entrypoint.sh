#!/bin/sh
# Every platform container: the production instance's dagster.yaml goes into DAGSTER_HOME (on
# the shared home volume) once, then the command runs.
set -e
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp /opt/unified_assets/dagster.yaml "$DAGSTER_HOME/"
exec "$@"
