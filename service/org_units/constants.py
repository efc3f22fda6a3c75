from enum import StrEnum


class UnitKind(StrEnum):
    department = "department"
    team = "team"
    partner = "partner"
    supplier = "supplier"
    channel = "channel"
    alliance = "alliance"


#: Kinds that are outside the company: partner keys and partner agreements bind to these.
EXTERNAL_KINDS = frozenset(
    {UnitKind.partner, UnitKind.supplier, UnitKind.channel, UnitKind.alliance}
)
