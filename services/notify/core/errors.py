"""Error classes of the notify service (core layer); adapters translate library errors to these."""

from __future__ import annotations


class NotifyError(Exception):
    """Root of every error the notify service raises on purpose."""


class RoutingFileError(NotifyError):
    """The routing file is missing, not TOML, or breaks the routing contract.

    The message names the offending key (e.g. `roles.safety_officer.addresses.0`), so an
    operator can fix the file from the startup error alone.
    """


class AckKeyError(NotifyError, ValueError):
    """The acknowledgement key is too short to sign links: the service refuses to start."""


class PermanentError(NotifyError):
    """The message can never be delivered as it stands; retrying does not help."""


class TransientError(NotifyError):
    """A dependency is unavailable for now; the same attempt may succeed later."""


class DeliveryRefusedError(PermanentError):
    """The SMTP server refused the message with a 5xx reply."""


class HeaderInjectionError(PermanentError):
    """A header value contains CR or LF; sending it could forge headers or recipients."""


class DeliveryDeferredError(TransientError):
    """The SMTP server answered 4xx for this message: try again later."""


class MailServerUnavailableError(TransientError):
    """No usable SMTP session: connection refused, timeout, TLS or login failure, disconnect."""


class RenderError(TransientError):
    """A template failed to render; transient so that a fixed deployment sends the backlog."""


class StoreUnavailableError(TransientError):
    """The notify store could not complete a read or a transaction."""


class AckRejectedError(NotifyError):
    """An acknowledgement was refused; the message says why (never echoes the token)."""


class AckTokenInvalidError(AckRejectedError):
    """The acknowledgement token is malformed or its signature does not verify."""


class AckForbiddenError(AckRejectedError):
    """The caller's role was not among the alert's recipients (core/authority.py)."""


class AckTokenExpiredError(AckRejectedError):
    """The acknowledgement token is genuine but expired."""


class AlreadyAcknowledgedError(AckRejectedError):
    """The signal was acknowledged before; the first acknowledgement stands."""


class UnknownAlertError(AckRejectedError):
    """No alert with this signal id needs acknowledging here."""

    @classmethod
    def for_signal(cls, signal_id: object) -> UnknownAlertError:
        """The one wording, also given for alerts a caller may not know exist."""
        return cls(f"no alert awaiting acknowledgement for signal {signal_id}")


class AlertClosedError(AckRejectedError):
    """The alert's signal was retracted (or superseded by an update): nothing to acknowledge."""
