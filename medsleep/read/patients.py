"""Patient headers: name, identifier (MRN) and birth date from the input's Patient resources
(stored at ingest), falling back to the id when none was sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from medsleep.store.tables import PATIENT

_IN_CLAUSE = 500


@dataclass(frozen=True)
class PatientHeader:
    patient: str
    name: str = ""
    mrn: str = ""
    birth_date: str = ""

    @property
    def label(self) -> str:
        """``Ana Muster · MRN 12345 · born 1950-03-01 · id icu-0001``, or the id alone.

        >>> PatientHeader("p1", "Ana Muster", "12345", "1950-03-01").label
        'Ana Muster · MRN 12345 · born 1950-03-01 · id p1'
        >>> PatientHeader("p1").label
        'p1'
        """
        return f"{self.details} · id {self.patient}" if self.details else self.patient

    @property
    def details(self) -> str:
        """``Ana Muster · MRN 12345 · born 1950-03-01``: what was sent, without the id."""
        parts = [self.name, f"MRN {self.mrn}" if self.mrn else "",
                 f"born {self.birth_date}" if self.birth_date else ""]  # fmt: skip
        return " · ".join(p for p in parts if p)


def patient_headers(conn: Connection, patients: Iterable[str]) -> dict[str, PatientHeader]:
    """The stored headers of these patients (those without one are left out)."""
    wanted = sorted(set(patients))
    p = PATIENT.c
    out: dict[str, PatientHeader] = {}
    for i in range(0, len(wanted), _IN_CLAUSE):
        rows = conn.execute(
            select(p.patient, p.name, p.mrn, p.birth_date).where(
                p.patient.in_(wanted[i : i + _IN_CLAUSE])
            )
        ).all()
        out.update({row.patient: PatientHeader(*row) for row in rows})
    return out


def patient_header(conn: Connection, patient: str) -> PatientHeader:
    """The patient's header, or one with the id alone."""
    return patient_headers(conn, [patient]).get(patient, PatientHeader(patient))
