"""Logging, configured once: console plus a rotating file in the user log dir, with secrets masked."""
from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from .config import ENV_SECRETS
from .redact import redact
from .market.ib_codes import QUIET_CODES

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_configured = False


class SecretMasker(logging.Filter):
    """Masks secrets in every record, message and traceback: by pattern (webhook paths, userinfo in URLs,
    password/token fields; see `redact`) and every fragment of the secret environment variables' values."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        found = [os.environ.get(name, "") for name in ENV_SECRETS] if secrets is None else secrets
        self.secrets = [s for s in found if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:      # the formatter uses this cached text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class IBNoiseFilter(logging.Filter):
    """ib_async logs a normal cancel confirmation (code 202) as an ERROR and dumps the whole trade as a
    WARNING; the engine already reports the cancel. Keep those at DEBUG so real errors stand out."""

    INFO_CODES = tuple(f"{kind} {code}," for code in sorted(QUIET_CODES) for kind in ("Error", "Warning"))

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("ib_async"):
            return True
        message = record.getMessage()
        if message.startswith(self.INFO_CODES) or message.startswith("Canceled order:"):
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure_logging(level: str = "INFO", log_dir: Path | None = None, console: bool = True) -> Path | None:
    """Install the handlers on the root logger (idempotent); return the log file path, if any."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _configured:
        return None
    masker = SecretMasker()
    ib_noise = IBNoiseFilter()
    formatter = logging.Formatter(FORMAT)
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        stream.addFilter(masker)
        stream.addFilter(ib_noise)
        root.addHandler(stream)
    log_file = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_dir / "workstation.log"
            handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=10_000_000, backupCount=5,
                                                           encoding="utf-8")
            handler.setFormatter(formatter)
            handler.addFilter(masker)
            handler.addFilter(ib_noise)
            root.addHandler(handler)
        except OSError as exc:
            logging.getLogger(__name__).warning("log file disabled: cannot write %s (%s)", log_dir, exc)
            log_file = None
    for noisy in ("numba", "asyncio", "ib_async", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _configured = True
    return log_file
