"""PHI guard: no names, dates of birth, free text or secrets in any log line or email.

Free-text fields of the contracts (schemas/facts.py), and where each may go:
- `FactCorrectedPayload.reason` and `.replacement`: narrative of a correction. Never in a log
  line or an email (auditors read it from the log itself).
- `source_ref`: the source system's own record id, which may embed a hospital number. Never in
  a log line or an email.
- `Quantity.unit`, `ReportedTime.as_reported`, fields a contract does not know: echoed only in
  the HTTP answer to the submitter who sent them; never logged.
- `AdverseEventPayload.term`: the reported clinical term (one line, no control characters).
  Safety needs it, so a signal's reason may quote it in an email (DESIGN.md principle 7); it
  never reaches a log line.

One run of the whole pipeline plants distinctive values (a made-up name, a date of birth, a
term) in each of these fields and in fields that must be refused, with every secret of the
deployment configured; then every rendered log line (structlog JSON at DEBUG, and every
standard-library record) and every email the SMTP server received is searched for them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kit.auth import Role, TokenStore
from kit.logging import configure_logging
from schemas import ReportIssued, Urgency
from schemas.derived import ReportIssuedPayload
from services.notify.adapters.jinja_renderer import TEMPLATES, JinjaRenderer
from services.notify.adapters.smtp_mailer import build_message
from services.notify.core.digest import DigestSchedule, digest_plan, into_digest
from services.notify.core.failover import failover_plans
from services.notify.core.plan import NotificationPlan, plan_notifications
from services.notify.core.report import plan_report
from services.notify.ports import OutgoingMail
from tests.conftest import SmtpRecorder, free_port
from tests.credentials import TEST_TOKEN
from tests.factories import enrolment, lab, sae, submission, unique
from tests.unit.notify.factories import make_routing, make_signal
from tools.stack import start_stack

NAME = "Meiling Canarywong"
DOB = "1961-04-17"
TERM = "Canaryterm oesophageal haemorrhage"
SOURCE_REF = f"MRN-{NAME.split()[1]}-{DOB}"
CORRECTION_REASON = f"wrong chart: belonged to {NAME}, born {DOB}"
SMTP_USER = "safetymon"
SMTP_PASSWORD = "smtp-" + unique("pw")
ACK_SECRET = "ack-" + unique("secret") + unique("key")
_NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
#: Words that name identifying data, searched in every log line (case-insensitive).
IDENTIFYING = re.compile(r"date.of.birth|\bdob\b|birth.?date|patient.?name|first.?name|surname")


@pytest.fixture
def smtp_with_auth() -> Iterator[tuple[int, SmtpRecorder]]:
    """An SMTP server that takes mail only after AUTH with SMTP_USER / SMTP_PASSWORD."""

    def authenticator(*args: Any) -> AuthResult:
        data = args[-1]  # (server, session, envelope, mechanism, auth data)
        expected = (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == expected
        return AuthResult(success=ok, handled=False)

    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,  # a loopback test server; production uses STARTTLS
    )
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


def _items(participant: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(accepted items, items ingest must refuse), each carrying planted values."""
    first_lab = lab(participant_id=participant, site_id="S01", source_ref=SOURCE_REF)
    good = [
        enrolment(participant_id=participant, site_id="S01"),
        first_lab,
        sae(participant_id=participant, site_id="S01", payload={"term": TERM}),
    ]
    refused = [
        {**enrolment(participant_id=unique("P")), "patient_name": NAME, "date_of_birth": DOB},
        lab(participant_id=participant, site_id="S01", unit=NAME),
        sae(participant_id=participant, site_id="S01", payload={"term": f"{NAME}\r\nBcc: x@y.z"}),
    ]
    return good, refused


def _correction(participant: str, superseded: str) -> dict[str, Any]:
    payload = {
        "supersedes_event_id": superseded,
        "reason": CORRECTION_REASON,
        "replacement": {"loinc": "1975-2", "result": {"value": 4.0, "unit": "mg/dL"}},
    }
    return submission("fact_corrected", payload, participant_id=participant, site_id="S01")


#: The test SMTP server's own logger: it receives the emails, so it holds their bodies.
_MAIL_SERVER_LOGGERS = ("mail.log",)


def _rendered(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    ours = (r for r in records if not r.name.startswith(_MAIL_SERVER_LOGGERS))
    return [formatter.format(record) for record in ours]


async def test_a_pipeline_run_puts_no_phi_free_text_or_secret_in_logs_or_emails(
    stack_environment: Path,
    smtp_with_auth: tuple[int, SmtpRecorder],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_port, recorder = smtp_with_auth
    for key, value in {
        "SAFETYMON_SMTP_PORT": str(smtp_port),
        "SAFETYMON_SMTP_USERNAME": SMTP_USER,
        "SAFETYMON_SMTP_PASSWORD": SMTP_PASSWORD,
        "SAFETYMON_ACK_SECRET": ACK_SECRET,
    }.items():
        monkeypatch.setenv(key, value)
    _, submitter = TokenStore(stack_environment / "tokens.json").create(
        "site-1-edc", Role.submitter, site="S01"
    )
    caplog.set_level(logging.DEBUG)
    configure_logging("json", level="DEBUG")
    participant = unique("PHI")
    good, refused = _items(participant)

    stack = await start_stack(data_dir=stack_environment, http_port=0)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.http_port}",
            headers={"Authorization": f"Bearer {submitter}"},
        ) as client:
            accepted = (await client.post("/v1/events", json=good)).json()
            rejected = (await client.post("/v1/events", json=refused)).json()
            lab_id = accepted["results"][1]["event_id"]
            correction = _correction(participant, lab_id)
            corrected = (await client.post("/v1/events", json=correction)).json()
            forbidden = await client.post("/v1/events", json=lab(participant_id=unique("X")))
            # A token that is a name: a 401 must not log what was presented.
            bogus = {"Authorization": "Bearer " + NAME}
            unauthenticated = await client.post("/v1/events", json=good, headers=bogus)
        mails = await recorder.wait_for(3)
        await stack.settled(30)
    finally:
        await stack.stop()

    assert accepted["accepted"] == 3, accepted
    assert rejected["rejected"] == 3, rejected
    assert corrected["accepted"] == 1, corrected
    assert (forbidden.status_code, unauthenticated.status_code) == (403, 401)
    lines = capsys.readouterr().err.splitlines() + _rendered(caplog.records)
    assert len(lines) > 20  # the run really logged: the search below is not vacuous
    secrets = (SMTP_PASSWORD, ACK_SECRET, TEST_TOKEN, submitter)
    for planted in (NAME, *NAME.split(), DOB, TERM, SOURCE_REF, CORRECTION_REASON, *secrets):
        leaked = [line for line in lines if planted in line]
        assert not leaked, f"{planted!r} reached a log line: {leaked[:3]}"
    assert not [line for line in lines if IDENTIFYING.search(line.lower())]
    bodies = [mail.raw.decode("utf-8", "replace") for mail in recorder.snapshot()]
    assert len(bodies) >= 3
    for planted in (NAME, *NAME.split(), DOB, SOURCE_REF, CORRECTION_REASON, *secrets):
        assert not [body for body in bodies if planted in body], f"{planted!r} reached an email"
    assert {header for mail in mails for header in mail.message}.isdisjoint({"Bcc", "Cc"})


# --- every email template, rendered through the notify renderer ----------------------------

HOSTILE = {
    # Control characters cannot even enter a signal (ShortText); Unicode line breaks can.
    "title": 'Serious adverse event <script>alert("x")</script>\u2028Bcc: attacker@evil.example',
    "reason": "AE 'haemorrhage' <img src=x onerror=alert(1)>\x85Bcc: attacker@evil.example",
    "values": {
        "ctcae_grade": 3,
        "patient_name": NAME,
        "date_of_birth": DOB,
        "dob": DOB,
        "initials": "MC",
        "mrn": SOURCE_REF,
    },
}


def _plans() -> list[NotificationPlan]:
    """Plans of every kind notify makes: each signal category, an update, a delivery failure."""
    routing = make_routing()
    plans: list[NotificationPlan] = []
    for category in ("sae", "death", "susar", "infection", "lab_shift"):
        signal = make_signal(category=category, **HOSTILE)
        plans.extend(plan_notifications(signal, routing))
    # The server's reply is shown to the safety officer (one line): try to break out of it.
    error = "550 no such user\r\nBcc: attacker@evil.example"
    plans.extend(failover_plans(plans[0], routing, error=error))
    held = [
        into_digest(plan, DigestSchedule(tz=UTC), now=_NOW)
        for urgency in (Urgency.U2, Urgency.U3)
        for plan in plan_notifications(make_signal(urgency=urgency, **HOSTILE), routing)
    ]
    plans.extend(digest_plan([plan]) for plan in held if plan.digest_key)
    for kind in ("dsmb_periodic", "dsmb_ad_hoc"):
        plans.extend(plan_report(_report(kind), routing, reports_base_url="https://r.example"))
    return plans


def _report(kind: str) -> ReportIssued:
    payload = ReportIssuedPayload(
        report_kind=kind,
        log_position=42,
        chain_head="0" * 64,
        files_sha256={"report.html": "a" * 64},
        numbers={"STOP-02.B.28d.triggered": 1.0},
    )
    return ReportIssued(
        event_id=uuid4(),
        trial_id="NCT01724398",
        occurred_at=_NOW,
        recorded_at=_NOW,
        source="report",
        source_ref=f"report-{kind}",
        actor="safetymon-report",
        payload=payload,
    )


def _templates() -> list[str]:
    return sorted(path.name.removesuffix(".txt.j2") for path in TEMPLATES.glob("*.txt.j2"))


def test_every_template_is_exercised_by_some_plan() -> None:
    """A new template without a producer here would escape the guard: name it in _plans."""
    assert set(_templates()) <= {plan.template for plan in _plans()}


@pytest.mark.parametrize("template", _templates())
def test_every_template_renders_without_phi_and_escapes_html(template: str) -> None:
    renderer = JinjaRenderer()
    plans = [plan for plan in _plans() if plan.template == template]

    for plan in plans:
        text, html = renderer.render(plan)
        message = build_message(
            OutgoingMail(plan, text, html), mail_from="safetymon@localhost", date=_NOW
        )
        raw = message.as_bytes(policy=default_policy).decode("utf-8", "replace")
        for planted in (NAME, DOB, SOURCE_REF):
            assert planted not in raw, f"{planted!r} in a rendered {template!r} email"
        assert "<script>" not in html and "<img" not in html
        assert not {"\r", "\n", "\u2028", "\x85"} & set(plan.subject)
        assert not [line for line in raw.splitlines() if line.lower().startswith("bcc:")]
        assert message["Bcc"] is None


def test_header_values_never_carry_cr_or_lf_even_when_a_plan_is_forged() -> None:
    """Defence in depth: a plan built around the planner still cannot inject a header."""
    from services.notify.core.errors import HeaderInjectionError

    plan = replace(_plans()[0], subject="alert\r\nBcc: attacker@evil.example")

    with pytest.raises(HeaderInjectionError):
        build_message(OutgoingMail(plan, "t", "<p>h</p>"), mail_from="a@b.c", date=_NOW)


# --- free text typed as an AE term (a name and an MRN in the term field) -------------------

FREE_TEXT_TERM = "Pneumonia for Johnathan Canarysmith MRN 7734219"
_TERM_LEAKS = ("Canarysmith", "Johnathan", "7734219")


def _term_signal(category: str, term: str) -> Any:
    # As the rules word it (services/rules/core/rules/sae_01.py) and list it (_shared.ae_values).
    reason = f"AE AE-1 '{term}' (CTCAE grade 3) meets ICH E2A seriousness: hospitalisation"
    values = {"ae_ref": "AE-1", "term": term, "ctcae_grade": 3}
    return make_signal(category=category, reason=reason, values=values)


@pytest.mark.parametrize("category", ["sae", "death", "susar", "infection"])
def test_a_free_text_term_never_reaches_either_part_of_an_email(category: str) -> None:
    renderer = JinjaRenderer()
    routing = make_routing()
    plans = list(plan_notifications(_term_signal(category, FREE_TEXT_TERM), routing))
    held = [into_digest(plan, DigestSchedule(tz=UTC), now=_NOW) for plan in plans]
    plans += [digest_plan([plan]) for plan in held if plan.digest_key]
    assert plans

    for plan in plans:
        text, html = renderer.render(plan)
        message = build_message(
            OutgoingMail(plan, text, html), mail_from="safetymon@localhost", date=_NOW
        )
        parts = [part.get_content() for part in message.walk() if not part.is_multipart()]
        assert len(parts) == 2  # text and HTML, decoded
        for content in (text, html, *parts, str(message["Subject"])):
            for leak in _TERM_LEAKS:
                assert leak not in content, f"{leak!r} in a {plan.template!r} email"
        assert "withheld" in text and "withheld" in html


def test_a_controlled_term_is_still_shown_in_the_email() -> None:
    [plan, *_] = plan_notifications(_term_signal("sae", "Sepsis"), make_routing())
    text, html = JinjaRenderer().render(plan)
    assert "'Sepsis'" in text and "Sepsis" in html


def _report_with_free_text_term(config: Any) -> Any:
    from services.report.core.build import build_report
    from services.report.core.model import Extract, LogPosition, SaeRow, TermCount

    sae_row = SaeRow(
        participant_id="P-001", site_id="S01", arm="B", ae_ref="AE-1", term=FREE_TEXT_TERM,
        onset_at=_NOW, worst_grade=4, criteria="hospitalisation", relatedness_uc_msc="possible",
        relatedness_pe="not_applicable", expectedness="expected", outcome="recovered",
        susar=False, last_procedure=None, last_procedure_at=None, awareness_at=_NOW,
        reported_at=None,
    )  # fmt: skip
    terms = (
        TermCount("Unclassified (no MedDRA code)", FREE_TEXT_TERM, "B", 1, 1, 4),
        TermCount("Infections and infestations", "Sepsis", "B", 1, 1, 3),
    )
    extract = Extract(
        position=LogPosition(_NOW, 2, "0" * 64, 2), exposure=(), ae_counts=(), terms=terms,
        aesi=(), aesi_onsets=(), infection_findings=(),
        saes=(sae_row,), deaths=(), shifts=(), meld=(), stops=(),
        mortality=(),
    )  # fmt: skip
    return build_report(extract, config)


def test_a_free_text_term_never_reaches_the_dsmb_report_html_or_csv(tmp_path: Path) -> None:
    from services.report.adapters.files import write_tables
    from services.report.adapters.html import HtmlRenderer
    from services.report.core.config import ReportConfig

    report = _report_with_free_text_term(ReportConfig())
    html = HtmlRenderer().render(report, generated_at=_NOW)
    write_tables(report, tmp_path)
    csvs = {path.name: path.read_text("utf-8") for path in tmp_path.glob("*.csv")}

    for content in (html, *csvs.values()):
        for leak in _TERM_LEAKS:
            assert leak not in content
    assert "verbatim withheld" in csvs["sae_listing.csv"]
    assert "Sepsis" in csvs["ae_by_term.csv"]


def test_a_closed_session_report_configured_for_it_shows_the_verbatim() -> None:
    from services.report.adapters.html import HtmlRenderer
    from services.report.core.config import ReportConfig

    report = _report_with_free_text_term(ReportConfig(verbatim_terms=True))
    assert "Canarysmith" in HtmlRenderer().render(report, generated_at=_NOW)
