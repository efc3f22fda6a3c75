from enum import StrEnum


class AgreementStatus(StrEnum):
    draft = "draft"
    active = "active"
    expired = "expired"
