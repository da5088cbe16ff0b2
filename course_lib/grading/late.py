"""Late submissions: the due date, extensions, when each student handed in, and the penalty.

Grades change after autograding (a person grades the written answers, a student is graded
again), so a penalty fixed at autograde time, as nbgrader's ``AssignLatePenalties`` fixes it,
goes stale. Here the penalty is a share of the score, computed again from the kept policy and
the submission time on every run; grades.csv, the gradebook (from which nbgrader's feedback
shows it) and the LMS exports all receive the one value computed here.

The rule, in the words the feedback uses: a submission is late when it arrives after the
student's due date (the assignment's, or their extension's); one late by at most the grace
period counts as on time; otherwise ``percent`` of the score is deducted for every started
``unit`` (day or hour) after the due date, at most ``cap`` percent.

The policy is kept in the course directory (``reports/<assignment>/late-policy.json``), so
that rewriting the results after manual grading applies the same policy without repeating it.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from course_lib.files import write_atomically
from course_lib.grading import GradingError

__all__ = [
    "CAP",
    "GRACE_MINUTES",
    "PERCENT",
    "TIMEZONE",
    "UNIT",
    "UNITS",
    "FLAGS",
    "LatePolicy",
    "Lateness",
    "assess",
    "check_options",
    "load_policy",
    "parse_time",
    "read_extensions",
    "read_submission_times",
    "resolve_policy",
    "save_policy",
    "utc",
    "zone",
]

# The policy's defaults, declared once: the command's --help quotes them from here.
PERCENT = 10.0
UNIT = "day"
CAP = 100.0
GRACE_MINUTES = 0.0
TIMEZONE = "UTC"
UNITS = {"day": 86400, "hour": 3600}
FLAGS = {
    "percent": "--late-percent",
    "unit": "--late-unit",
    "cap": "--late-cap",
    "grace_minutes": "--late-grace",
    "timezone": "--timezone",
    "extensions": "--extensions",
}

Extension = datetime | timedelta  # a new due date, or time added to the assignment's


@dataclass(frozen=True)
class LatePolicy:
    """The assignment's due date, the penalty rule and the students' extensions."""

    due: datetime
    percent: float = PERCENT
    unit: str = UNIT
    cap: float = CAP
    grace_minutes: float = GRACE_MINUTES
    timezone: str = TIMEZONE
    extensions: dict[str, Extension] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Values that would make the rule meaningless stop here, for the command and for Python callers."""
        if self.due.tzinfo is None:
            raise GradingError("The due date needs a time zone (give --timezone or an offset such as +01:00).")
        if self.unit not in UNITS:
            raise GradingError(f"--late-unit must be one of {', '.join(UNITS)}, not {self.unit!r}.")
        if not 0 <= self.percent <= 100 or not 0 <= self.cap <= 100:
            raise GradingError(
                f"--late-percent and --late-cap are percents from 0 to 100, not {self.percent}, {self.cap}."
            )
        if self.grace_minutes < 0:
            raise GradingError(f"--late-grace must be at least 0 minutes, not {self.grace_minutes}.")
        zone(self.timezone)

    def due_for(self, student: str) -> datetime:
        """The student's due date: their extension's, else the assignment's."""
        extension = self.extensions.get(student)
        if extension is None:
            return self.due
        return self.due + extension if isinstance(extension, timedelta) else extension

    def rule(self) -> str:
        """The penalty rule in words, for feedback and the command's output."""
        rule = f"{self.percent:g}% of the score per started {self.unit} late"
        if self.cap < 100:
            rule += f", at most {self.cap:g}%"
        if self.grace_minutes:
            rule += f"; up to {_duration(self.grace_minutes * 60)} late counts as on time"
        return rule

    def describe(self) -> str:
        """The whole policy in one line, for the command's output."""
        count = len(self.extensions)
        return f"due {self.show(self.due)}, {self.rule()}, {count} extension{'s' if count != 1 else ''}"

    def show(self, moment: datetime) -> str:
        """A time as people read it, in the policy's time zone."""
        return moment.astimezone(zone(self.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True)
class Lateness:
    """How late one submission was, and the percent of its score deducted for it."""

    due: datetime
    submitted: datetime | None
    seconds_late: float  # 0 when on time or unknown
    percent: float  # of the score, 0 to the policy's cap
    note: str  # what the student's feedback says about it


def assess(policy: LatePolicy, student: str, submitted: datetime | None) -> Lateness:
    """The lateness and percent deducted for a submission made at ``submitted`` (None: unknown).

    Exactly on the due date is on time; one second later is late by one started unit,
    unless the grace period covers it; lateness is counted from the due date, not from the
    end of the grace period.
    """
    due = policy.due_for(student)
    own = " (your extension)" if student in policy.extensions else ""
    if submitted is None:
        return Lateness(due, None, 0.0, 0.0, f"Due {policy.show(due)}{own}; submission time unknown: no late penalty.")
    late = (submitted - due).total_seconds()
    when = f"Submitted {policy.show(submitted)}, due {policy.show(due)}{own}"
    if late <= 0:
        return Lateness(due, submitted, 0.0, 0.0, f"{when}: on time.")
    if late <= policy.grace_minutes * 60:
        return Lateness(due, submitted, late, 0.0, f"{when}: {_duration(late)} late, within the grace period.")
    units = math.ceil(late / UNITS[policy.unit])
    percent = min(policy.cap, units * policy.percent)
    return Lateness(
        due,
        submitted,
        late,
        percent,
        f"{when}: {_duration(late)} late ({units} started {policy.unit}{'s' if units > 1 else ''}); "
        f"{percent:g}% of the score deducted ({policy.rule()}).",
    )


def _duration(seconds: float) -> str:
    """``93784`` -> ``1 d 2 h 3 min``; under a minute, in seconds."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name such as ``Europe/Zurich``, or an error that says what is wrong."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise GradingError(f"Unknown time zone {name!r}: give an IANA name such as UTC or Europe/Zurich.") from None


def parse_time(text: str, default_zone: str, what: str) -> datetime:
    """A date and time in ISO 8601 or as LMS exports write it; without an offset, in ``default_zone``.

    dateutil reads what spreadsheets and LMSs write ("2025-03-01 23:59", "Saturday, 1 March
    2025, 11:59 PM", nbgrader's "2025-03-01 22:59:00.123 UTC"); ambiguous numeric dates are
    read month first, so ISO 8601 is the safe form.
    """
    import dateutil.parser

    try:
        moment = dateutil.parser.parse(text.strip())
    except (ValueError, OverflowError):
        raise GradingError(f"{what}: {text!r} is not a date and time (write it as 2025-03-01T23:59).") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone(default_zone))


def _column(row: dict[str, str], names: tuple[str, ...]) -> str:
    """The first non-empty value among the columns ``names`` (header names compared in lower case)."""
    return next((row[name] for name in names if row.get(name)), "")


def _read_rows(path: Path, what: str) -> list[dict[str, str]]:
    """The rows of a CSV file, header names in lower case, values stripped."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise GradingError(f"Cannot read the {what} {path}: {error.strerror}.") from None
    return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in rows]


def read_extensions(path: Path, default_zone: str) -> dict[str, Extension]:
    """Extensions from a CSV: ``student_id`` (or ``id``) and either ``due`` (a new due date) or ``extra_hours``."""
    extensions: dict[str, Extension] = {}
    for number, row in enumerate(_read_rows(path, "extensions file"), start=2):
        student, due, hours = _column(row, ("student_id", "id")), row.get("due", ""), row.get("extra_hours", "")
        if not student or bool(due) == bool(hours):
            raise GradingError(
                f"{path}, line {number}: each row needs a student_id and either a due date (column 'due') "
                f"or a number of hours (column 'extra_hours'); got {row}."
            )
        if due:
            extensions[student] = parse_time(due, default_zone, f"{path}, line {number}")
            continue
        try:
            extensions[student] = timedelta(hours=float(hours))
        except ValueError:
            raise GradingError(f"{path}, line {number}: extra_hours takes a number, not {hours!r}.") from None
    return extensions


def read_submission_times(path: Path, default_zone: str, emails: dict[str, str]) -> dict[str, datetime]:
    """Submission times from a CSV: a student column (``student_id``, ``id``, or an ``email`` /
    ``email address`` found in the roster ``emails``: email -> id) and a time column (``submitted_at``,
    ``timestamp`` or Moodle's grading worksheet's ``last modified (submission)``). Rows without a
    time (Moodle writes ``-``) are skipped."""
    times = {}
    for number, row in enumerate(_read_rows(path, "submission times"), start=2):
        student = _column(row, ("student_id", "id")) or emails.get(_column(row, ("email", "email address")).lower(), "")
        moment = _column(row, ("submitted_at", "timestamp", "last modified (submission)"))
        if not student:
            raise GradingError(
                f"{path}, line {number}: no student_id, id, or email of a student on the roster (--students): {row}."
            )
        if moment and moment != "-":
            times[student] = parse_time(moment, default_zone, f"{path}, line {number}")
    return times


def _policy_file(reports: Path) -> Path:
    return reports / "late-policy.json"


def load_policy(reports: Path) -> LatePolicy | None:
    """The policy kept in a course's reports folder of an assignment, or None."""
    path = _policy_file(reports)
    if not path.is_file():
        return None
    values = json.loads(path.read_text())
    extensions = {
        student: timedelta(hours=value["extra_hours"])
        if "extra_hours" in value
        else datetime.fromisoformat(value["due"])
        for student, value in values.pop("extensions").items()
    }
    return LatePolicy(due=datetime.fromisoformat(values.pop("due")), extensions=extensions, **values)


def save_policy(reports: Path, policy: LatePolicy | None) -> None:
    """Keep the policy (atomically), or forget it when None."""
    path = _policy_file(reports)
    if policy is None:
        path.unlink(missing_ok=True)
        return
    extensions = {
        student: {"extra_hours": value.total_seconds() / 3600}
        if isinstance(value, timedelta)
        else {"due": value.isoformat()}
        for student, value in sorted(policy.extensions.items())
    }
    values = {
        "due": policy.due.isoformat(),
        "percent": policy.percent,
        "unit": policy.unit,
        "cap": policy.cap,
        "grace_minutes": policy.grace_minutes,
        "timezone": policy.timezone,
        "extensions": extensions,
    }
    write_atomically(path, lambda handle: json.dump(values, handle, indent=1))


def resolve_policy(
    kept: LatePolicy | None,
    *,
    due: str | None = None,
    percent: float | None = None,
    unit: str | None = None,
    cap: float | None = None,
    grace_minutes: float | None = None,
    timezone_name: str | None = None,
    extensions: Path | None = None,
) -> LatePolicy | None:
    """The policy for this run: the kept one with the options given (not None) replacing its values.

    ``due="none"`` drops the policy. Rule options without any due date, kept or given, are a
    mistake rather than something to ignore: the instructor expects a penalty.
    """
    if due is not None and due.strip().lower() == "none":
        return None
    zone_name = timezone_name or (kept.timezone if kept else TIMEZONE)
    given = {
        "percent": percent,
        "unit": unit,
        "cap": cap,
        "grace_minutes": grace_minutes,
        "timezone": timezone_name,
    }
    given = {name: value for name, value in given.items() if value is not None}
    if extensions is not None:
        given["extensions"] = read_extensions(extensions, zone_name)
    if due is not None:
        given["due"] = parse_time(due, zone_name, "--due")
    if kept is None and "due" not in given:
        rule = [FLAGS[name] for name in given if name != "timezone"]
        if rule:
            raise GradingError(f"{', '.join(rule)}: a late policy needs a due date; give --due too.")
        return None
    return replace(kept, **given) if kept is not None else LatePolicy(**given)


def utc(moment: datetime) -> datetime:
    """The same moment in UTC (for files and the gradebook, which stores naive UTC times)."""
    return moment.astimezone(UTC)


def check_options(
    due: str | None,
    percent: float | None,
    unit: str | None,
    cap: float | None,
    grace_minutes: float | None,
    timezone_name: str | None,
) -> None:
    """Stop on an impossible late-policy option before anything runs (the kept policy is merged in later)."""
    zone_name = timezone_name or TIMEZONE
    if due is not None and due.strip().lower() != "none":
        parse_time(due, zone_name, "--due")
    LatePolicy(
        due=datetime.now(UTC),
        percent=PERCENT if percent is None else percent,
        unit=unit or UNIT,
        cap=CAP if cap is None else cap,
        grace_minutes=GRACE_MINUTES if grace_minutes is None else grace_minutes,
        timezone=zone_name,
    )
