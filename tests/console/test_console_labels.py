"""Clinical labels of signal values, and the emails that use them and link to the console."""

from __future__ import annotations

from clinical.labels import label_of, labelled
from services.notify.adapters.jinja_renderer import JinjaRenderer
from services.notify.adapters.labelled_renderer import LabelledRenderer
from services.notify.core.plan import NotificationPlan, plan_notifications
from tests.unit.notify.factories import make_routing, make_signal


def test_known_keys_read_as_clinical_words_with_units() -> None:
    assert label_of("relatedness_uc_msc").text == "Relatedness to UC-MSC"
    assert label_of("trigger_event_type").text == "Triggered by"
    assert labelled({"creatinine_umol_l": 180.0, "inr": 2.55, "septic_shock": False}) == [
        ("Creatinine", "180 µmol/L"),
        ("INR", "2.55"),
        ("Septic shock", "no"),
    ]


def test_unknown_keys_read_as_words_with_the_unit_their_suffix_names() -> None:
    assert labelled({"albumin_g_l": 28, "hepatic_flag": None}) == [
        ("Albumin", "28 g/L"),
        ("Hepatic flag", "—"),
    ]


def _plan() -> NotificationPlan:
    signal = make_signal(values={"relatedness_uc_msc": "possible", "ctcae_grade": 3})
    return plan_notifications(signal, make_routing())[0]


def test_email_values_use_clinical_labels_and_link_to_the_console() -> None:
    plan = _plan()

    text, html = LabelledRenderer(console_url="https://console.example/").render(plan)

    assert "  Relatedness to UC-MSC: possible" in text
    assert "relatedness_uc_msc" not in text
    assert '<th align="left">Relatedness to UC-MSC</th><td>possible</td>' in html
    link = f"https://console.example/alerts/{plan.signal_id}"
    assert f"  {link}\n" in text
    assert f'<a href="{link}">' in html


def test_no_console_link_when_unset_and_plain_renderer_still_works() -> None:
    plan = _plan()

    text, html = LabelledRenderer().render(plan)
    plain_text, _ = JinjaRenderer().render(plan)

    assert "/alerts/" not in text and "/alerts/" not in html
    assert "  relatedness_uc_msc: possible" in plain_text
