"""Settings dialog: fields generated from the pydantic config models (descriptions become tooltips),
validated inline by the same models; Apply hands the new Settings to the running engine."""
from __future__ import annotations

import typing
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QScrollArea, QTabWidget,
                               QVBoxLayout, QWidget)

from ...commands import ApplySettings
from ...config import _describe, field_help, problems_by_field, problems_of
from .. import theme

# tab title -> (section path, fields to show or None for all)
TABS: list[tuple[str, list[tuple[str, list[str] | None]]]] = [
    ("Risk limits", [("risk", None), ("engine", None)]),
    ("Signals", [("signals", None)]),
    ("Execution", [("execution", None)]),
    ("Hedging", [("hedging", None)]),
    ("Alerts", [("alerts", ["fold_window_s", "tray_min_severity", "stale_data_s", "loop_lag_ms", "disk_free_mb",
                            "max_retries", "retry_backoff_s", "console_min_severity", "email", "webhook"])]),
    ("Connection", [("market", ["source", "underlying", "snapshot_interval_s", "stale_after_s"]),
                    ("ib", None)]),
]
# a plain Python thread: qasync's default executor runs QThreads, which abort the process if still alive at exit
_ALERT_TESTS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-alert")
CONNECTION_FIELDS = {("market", "source"), ("execution", "broker"), ("ib", "host"), ("ib", "port"),
                     ("ib", "client_id"), ("ib", "live")}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) \
            and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _resolve(root: BaseModel, path: tuple[str, ...]) -> BaseModel:
    obj = root
    for part in path:
        obj = getattr(obj, part)
    return obj


def _problem_text(exc: ValidationError) -> str:
    """The config file's wording for a failed field ("must be a finite number ...", "must be <= 1e+08, got ...")."""
    return "; ".join(_describe(e).split(": ", 1)[-1] for e in exc.errors())


class FieldEditor:
    """One field: a widget, its parser, its inline error label."""

    def __init__(self, path: tuple[str, ...], name: str, info, value: Any) -> None:
        self.path, self.name, self.info = path, name, info
        annotation, self.optional = _unwrap_optional(info.annotation)
        self.kind = "text"
        origin = typing.get_origin(annotation)
        if annotation is bool:
            self.kind = "bool"
            self.widget = QCheckBox()
            self.widget.setChecked(bool(value))
        elif origin is Literal:
            self.kind = "choice"
            self.widget = QComboBox()
            self.widget.addItems([str(a) for a in typing.get_args(annotation)])
            self.widget.setCurrentText(str(value))
        else:
            if origin is list:
                self.kind = "list"
            self.widget = QLineEdit(self.format(value))
        self.widget.setToolTip(field_help(info) or name)
        self.field_error = ""          # this field alone (its type and range); rules across fields come after
        self.error = QLabel("")
        self.error.setObjectName("error")
        self.error.setStyleSheet(f"color: {theme.NEGATIVE}")
        self.error.setVisible(False)
        self.error.setWordWrap(True)

    def format(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def value(self) -> Any:
        if self.kind == "bool":
            return self.widget.isChecked()
        if self.kind == "choice":
            return self.widget.currentText()
        text = self.widget.text().strip()
        if self.kind == "list":
            return [t.strip() for t in text.split(",") if t.strip()]
        if not text and self.optional:
            return None
        return text

    def set_text(self, text: str) -> None:
        if self.kind == "bool":
            self.widget.setChecked(str(text).lower() in ("1", "true", "yes", "on"))
        elif self.kind == "choice":
            self.widget.setCurrentText(str(text))
        else:
            self.widget.setText(str(text))

    def changed_signal(self):
        if self.kind == "bool":
            return self.widget.toggled
        if self.kind == "choice":
            return self.widget.currentTextChanged
        return self.widget.textChanged


class SettingsDialog(QDialog):
    """Edits a deep copy of the settings; Cancel discards it, Apply sends it to the engine."""

    def __init__(self, settings: Any, bridge: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(640, 720)
        self.original = settings
        self.working = settings.model_copy(deep=True)
        self.bridge = bridge
        self.editors: dict[str, FieldEditor] = {}
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        for title, sections in TABS:
            page = QWidget()
            v = QVBoxLayout(page)
            for section, names in sections:
                model = _resolve(self.working, (section,))
                box = QGroupBox(section)
                form = QFormLayout(box)
                self._add_fields(form, (section,), model, names)
                v.addWidget(box)
            if title == "Alerts":
                v.addWidget(self._test_alert_box())
            v.addStretch(1)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            self.tabs.addTab(scroll, title)
        self.problems = QLabel("")
        self.problems.setStyleSheet(f"color: {theme.NEGATIVE}")
        self.problems.setWordWrap(True)
        layout.addWidget(self.problems)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Apply | QDialogButtonBox.Cancel)
        self.apply_button = self.buttons.button(QDialogButtonBox.Apply)
        self.apply_button.clicked.connect(self.apply)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def _add_fields(self, form: QFormLayout, path: tuple[str, ...], model: BaseModel,
                    names: list[str] | None) -> None:
        fields = type(model).model_fields
        for name in names or list(fields):
            info = fields[name]
            value = getattr(model, name)
            if info.exclude or isinstance(value, SecretStr) or _unwrap_optional(info.annotation)[0] is SecretStr:
                continue                                   # secrets come from the environment only
            if isinstance(value, BaseModel):
                box = QGroupBox(name)
                sub = QFormLayout(box)
                self._add_fields(sub, path + (name,), value, None)
                form.addRow(box)
                continue
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                continue                                   # e.g. alert rules: edit in YAML
            editor = FieldEditor(path, name, info, value)
            key = ".".join(path + (name,))
            self.editors[key] = editor
            editor.changed_signal().connect(lambda *_, e=editor: self._validate(e))
            label = QLabel(name.replace("_", " "))
            label.setToolTip(field_help(info))
            holder = QWidget()
            hv = QVBoxLayout(holder)
            hv.setContentsMargins(0, 0, 0, 0)
            hv.setSpacing(1)
            hv.addWidget(editor.widget)
            hv.addWidget(editor.error)
            form.addRow(label, holder)

    # ------------------------------------------------------------------------------- validation
    def _validate(self, editor: FieldEditor) -> bool:
        """The config's own rules: the field alone (validate_assignment: finite, in range), then the rules
        across fields (min < max, auto limits <= order limits <= position limits) on the whole settings."""
        section = _resolve(self.working, editor.path)
        try:
            setattr(section, editor.name, editor.value())      # a refused value is not assigned
        except ValidationError as exc:
            editor.field_error = _problem_text(exc)
        else:
            editor.field_error = ""
        across = problems_by_field(self.working)
        for key, each in self.editors.items():
            text = each.field_error or across.get(key, "")
            each.error.setText(text)
            each.error.setVisible(bool(text))
        invalid = [k for k, e in self.editors.items() if e.error.text()]
        invalid += [k for k in across if k not in self.editors]   # a rule with a field not shown here
        self.apply_button.setEnabled(not invalid)
        self.problems.setText(f"{len(invalid)} field(s) need fixing: {', '.join(invalid)}" if invalid else "")
        return not editor.error.text()

    def set_value(self, key: str, text: Any) -> bool:
        """Type into a field programmatically (tests, scripted changes); True when it validates."""
        editor = self.editors[key]
        editor.set_text(str(text))
        return self._validate(editor)

    def error_text(self, key: str) -> str:
        return self.editors[key].error.text()

    # ------------------------------------------------------------------------------ test alerts
    TEST_CHANNELS = (("log", "Log file"), ("email", "E-mail"), ("webhook", "Webhook"), ("tray", "Desktop"))

    def _test_alert_box(self) -> QGroupBox:
        """One button per channel: sends a TEST_ALERT with the settings as edited here (before Apply)."""
        box = QGroupBox("Send test alert")
        row = QHBoxLayout(box)
        self.test_buttons: dict[str, QPushButton] = {}
        for name, label in self.TEST_CHANNELS:
            button = QPushButton(label)
            button.setToolTip(f"send one TEST_ALERT through the {name} channel")
            button.clicked.connect(lambda _=False, n=name: self.send_test_alert(n))
            row.addWidget(button)
            self.test_buttons[name] = button
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        row.addWidget(self.test_result, 1)
        return box

    def send_test_alert(self, channel: str) -> None:
        """Deliver off the GUI thread (an SMTP or HTTP timeout must not freeze the window)."""
        import asyncio

        from ...alerts import send_test_alert
        from ...storage.paths import default_log_dir
        notify = getattr(self.parent(), "notify", None)
        self.test_result.setText(f"sending via {channel}…")
        self.test_buttons[channel].setEnabled(False)

        async def run() -> None:
            try:
                if channel == "tray":       # Qt: on the GUI thread (it only shows a notification)
                    result = send_test_alert(channel, self.working, tray_notify=notify)
                else:
                    result = await asyncio.get_running_loop().run_in_executor(
                        _ALERT_TESTS, partial(send_test_alert, channel, self.working, log_dir=default_log_dir()))
                ok, detail = result.ok, result.detail
            except Exception as exc:  # shown, never raised into Qt
                ok, detail = False, str(exc)
            self.test_buttons[channel].setEnabled(True)
            self.test_result.setStyleSheet(f"color: {theme.POSITIVE if ok else theme.NEGATIVE}")
            self.test_result.setText(detail)

        asyncio.ensure_future(run())

    def connection_changed(self) -> bool:
        return any(getattr(_resolve(self.working, (s,)), f) != getattr(_resolve(self.original, (s,)), f)
                   for s, f in CONNECTION_FIELDS)

    # ------------------------------------------------------------------------------------ apply
    def apply(self) -> None:
        self.reconnect = False
        problems = problems_of(self.working)          # the same whole check as a config file
        if problems:
            self.problems.setText("Not applied:\n" + "\n".join(problems))
            return
        if self.connection_changed():
            answer = QMessageBox.question(
                self, "Reconnect", "The connection settings changed. Apply them and reconnect now?\n"
                "The workstation stops the engine (working orders as execution.on_exit says), restarts on the "
                "new connection and reconciles with the broker.\n(No keeps the current connection and applies "
                "the rest.)", QMessageBox.Yes | QMessageBox.No | QMessageBox.Cancel, QMessageBox.No)
            if answer == QMessageBox.Cancel:
                return
            if answer == QMessageBox.No:
                for s, f in CONNECTION_FIELDS:
                    setattr(_resolve(self.working, (s,)), f, getattr(_resolve(self.original, (s,)), f))
            self.reconnect = answer == QMessageBox.Yes
        self.bridge.command(ApplySettings(self.working, "settings dialog"),
                            on_done=self._applied, on_error=lambda m: self._applied([m]))

    def _applied(self, problems) -> None:
        problems = list(problems or [])
        if problems:
            self.problems.setText("Not applied:\n" + "\n".join(str(p) for p in problems))
            return
        self.accept()
        restart = getattr(self.parent(), "restart", None)
        if getattr(self, "reconnect", False) and restart is not None:
            restart()              # saved in the overrides file: the new process starts on the new connection
