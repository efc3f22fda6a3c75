from enum import StrEnum


class FeedbackScale(StrEnum):
    csat = "csat"  # 1–5, higher is better
    ces = "ces"  # 1–7, lower effort is better
    nps = "nps"  # 0–10


SCALE_RANGES: dict[FeedbackScale, tuple[int, int]] = {
    FeedbackScale.csat: (1, 5),
    FeedbackScale.ces: (1, 7),
    FeedbackScale.nps: (0, 10),
}
