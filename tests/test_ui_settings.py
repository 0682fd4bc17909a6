"""The settings dialog (pytest-qt, offscreen): devices, the model manager against a real HTTPS
server on 127.0.0.1, import of generated tiny models, saving and validation, deleting a range."""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import QLabel

from app.capture import audio_device
from app.core.config import Config, load_config
from app.core.errors import ConfigError, InputError
from app.core.paths import DataPaths
from app.core.units import fmt_bytes
from app.memory.base import Moment
from app.models.catalog import CatalogEntry, load_catalog
from app.models.manager import ModelManager
from app.pipeline.service import DaybookService
from app.ui.settings import NO_MICROPHONE, SettingsDialog, validate_config
from app.ui.settings import devices as settings_devices
from app.ui.settings import models as settings_models
from app.ui.settings import privacy as settings_privacy
from app.ui.tasks import TaskGroup
from tests import tinymodels
from tests.https_server import FileServer
from tests.test_models_download import gguf_shaped

DATA = gguf_shaped(3_000_000, seed=7)
SHA = hashlib.sha256(DATA).hexdigest()
DAY = 1_795_165_200.0  # 2026-11-20 09:00 UTC


class TrickleServer:
    """Serves one file slowly (32 KB every 20 ms, ≈1.6 MB/s) with FileServer's certificate, so a
    download is still running when the test cancels it. Records the bytes each request got."""

    def __init__(self, data: bytes, cert: Path, key: Path) -> None:
        self.sent: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                sent = 0
                try:
                    for i in range(0, len(data), 32768):
                        self.wfile.write(data[i:i + 32768])
                        self.wfile.flush()
                        sent += len(data[i:i + 32768])
                        time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass
                outer.sent.append(sent)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    srv = FileServer({"m.gguf": DATA}, tmp_path_factory.mktemp("cert"), stall_s=1.5)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def trickle(server: FileServer) -> Iterator[TrickleServer]:
    srv = TrickleServer(DATA, server.cert, server.key)
    yield srv
    srv.close()


def _entry(name: str, url: str, requires: tuple[str, ...] = ()) -> CatalogEntry:
    return CatalogEntry(name=name, role="llm", file=f"{name}.gguf", url=url,
                        size_bytes=len(DATA), sha256=SHA, licence="MIT",
                        description=f"test model {name}", format="gguf", requires=requires,
                        verified=True)


@pytest.fixture
def catalog(server: FileServer, trickle: TrickleServer) -> dict[str, CatalogEntry]:
    entries = [
        _entry("tiny-ok", server.url("ok", "m.gguf")),
        _entry("tiny-missing", server.url("ok", "absent.gguf")),
        _entry("tiny-corrupt", server.url("wrong", "m.gguf")),
        _entry("tiny-stall", server.url("stall", "m.gguf")),
        _entry("tiny-slow", trickle.url("m.gguf"), requires=("tiny-ok",)),
    ]
    return {e.name: e for e in entries}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DaybookService]:
    svc = DaybookService(Config(), DataPaths(tmp_path / "data").ensure())
    yield svc
    svc.close()


@pytest.fixture
def fake_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [{"name": "USB mic", "max_input_channels": 1},
               {"name": "USB mic", "max_input_channels": 2},  # same device, another host API
               {"name": "Built-in microphone", "max_input_channels": 2}]
    monkeypatch.setattr(audio_device, "list_input_devices", lambda: devices)
    monkeypatch.setattr(settings_devices, "probe_cameras", lambda: [0])


@pytest.fixture
def open_dialog(qtbot, service: DaybookService, tmp_path: Path
                ) -> Callable[..., SettingsDialog]:
    def make(answer: bool = True) -> SettingsDialog:
        dialog = SettingsDialog(service, tmp_path / "config" / "config.toml")
        qtbot.addWidget(dialog)
        dialog.questions = []  # type: ignore[attr-defined]

        def confirm(title: str, question: str) -> bool:
            dialog.questions.append(question)  # type: ignore[attr-defined]
            return answer

        dialog.confirm = confirm  # type: ignore[method-assign]
        qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
        return dialog
    return make


@pytest.fixture
def dialog(fake_devices: None, open_dialog: Callable[..., SettingsDialog]) -> SettingsDialog:
    return open_dialog()


@pytest.fixture
def manager(service: DaybookService, catalog: dict[str, CatalogEntry], server: FileServer,
            tmp_path: Path) -> ModelManager:
    service.models = ModelManager(tmp_path / "models", catalog,
                                  ssl_context=server.client_context(), timeout_s=10)
    return service.models


def _status(dialog: SettingsDialog, name: str) -> str:
    model = dialog.models.table_model
    return model.data(model.index(model.row_of(name), model.STATUS))


def _leftovers(manager: ModelManager) -> list[str]:
    return sorted(p.name for p in manager.dir.iterdir()
                  if p.name not in ("installed.json", "installed.lock"))


# --- devices ----------------------------------------------------------------------------------

def test_devices_are_listed_with_none_and_default(dialog: SettingsDialog) -> None:
    mics = [dialog.devices.microphone.itemText(i) for i in range(dialog.devices.microphone.count())]
    assert mics == ["System default", "USB mic", "Built-in microphone", "(none)"]
    assert dialog.devices.mic_status.text() == "2 microphones found."
    cams = [dialog.devices.camera.itemText(i) for i in range(dialog.devices.camera.count())]
    assert cams == ["Camera 0", "File or stream URL", "(none)"]
    assert dialog.devices.camera.currentText() == "Camera 0"  # the default config's camera
    assert not dialog.devices.camera_url.isEnabled()
    assert "take effect at once" in " ".join(
        w.text() for w in dialog.devices.findChildren(QLabel))


@pytest.mark.parametrize("failure", [
    None,
    InputError("PortAudio is not installed, so no microphone can be opened"),
    OSError("PortAudio library not found"),
])
def test_no_microphone_is_a_message_not_a_crash(failure: Exception | None, monkeypatch,
                                                open_dialog) -> None:
    def listing() -> list[dict]:
        if failure is not None:
            raise failure
        return []

    monkeypatch.setattr(audio_device, "list_input_devices", listing)
    monkeypatch.setattr(settings_devices, "probe_cameras", lambda: [])
    dialog = open_dialog()
    status = dialog.devices.mic_status.text()
    assert NO_MICROPHONE in status
    if failure is not None:
        assert str(failure) in status
    mic = dialog.devices.microphone
    assert [mic.itemText(i) for i in range(mic.count())] == ["System default", "(none)"]
    assert "No camera found" in dialog.devices.camera_status.text()


def test_real_device_probes_do_not_crash(open_dialog) -> None:
    """Real PortAudio and cv2 probing (this machine has no camera and maybe no sound card)."""
    dialog = open_dialog()
    assert dialog.devices.mic_status.text() not in ("", "Looking for microphones…")
    assert dialog.devices.camera_status.text() not in ("", "Looking for cameras…")


# --- the models table, downloads ----------------------------------------------------------------

def test_table_lists_the_catalog_and_what_is_in_use(dialog: SettingsDialog,
                                                    service: DaybookService) -> None:
    assert service.models is not None
    rows = dialog.models.table_model.rows
    assert [r.name for r in rows] == list(load_catalog())
    model = dialog.models.table_model
    assert model.columnCount() == 7 and model.rowCount() == len(rows)
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Name"
    whisper = model.row_of("whisper-base.en")
    assert [model.data(model.index(whisper, c)) for c in range(5)] == [
        "whisper-base.en", "speech recognition", "148.0 MB", "-", "✓"]
    assert "moonshine" in dialog.models.in_use.text()
    assert "extractive answers" in dialog.models.in_use.text()
    assert not dialog.models.download_button.isEnabled()  # nothing selected
    dialog.models.select("whisper-base.en")
    assert dialog.models.download_button.isEnabled()
    assert not dialog.models.remove_button.isEnabled()
    assert "ggml-base.en.bin" in dialog.models.details.text()


def test_download_shows_progress_and_ends_installed(qtbot, dialog: SettingsDialog,
                                                    manager: ModelManager) -> None:
    dialog.models.refresh()
    seen: list[tuple[int, str]] = []
    dialog.models.progress.valueChanged.connect(
        lambda v: seen.append((v, dialog.models.progress_label.text())))
    dialog.models.select("tiny-ok")
    qtbot.mouseClick(dialog.models.download_button, Qt.MouseButton.LeftButton)
    assert dialog.models.downloading and not dialog.models.import_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.models.downloading, timeout=20_000)
    assert set(manager.installed()) == {"tiny-ok"}
    assert manager.path(manager.installed()["tiny-ok"]).read_bytes() == DATA
    assert _status(dialog, "tiny-ok") == "installed"
    assert "Installed tiny-ok" in dialog.models.message.text()
    assert "checksum verified" in dialog.models.message.text()
    assert seen and seen[-1][0] == 1000
    assert seen[-1][1].startswith("tiny-ok: 3.0 of 3.0 MB · ") and seen[-1][1].endswith("MB/s")
    assert dialog.models.progress_box.isHidden()
    assert dialog.models.remove_button.isEnabled()  # the new model is selected
    assert "test model tiny-ok" in dialog.models.details.text()


def test_cancel_mid_download_leaves_nothing_installed(qtbot, dialog: SettingsDialog,
                                                      manager: ModelManager,
                                                      trickle: TrickleServer) -> None:
    """tiny-slow needs tiny-ok first: cancelling tiny-slow also takes back the companion."""
    dialog.models.refresh()
    dialog.models.download_model("tiny-slow")
    qtbot.waitUntil(lambda: dialog.models.progress_label.text().startswith("tiny-slow: ")
                    and dialog.models.progress.value() > 0, timeout=20_000)
    assert "tiny-ok" in manager.installed()  # the companion came first
    assert "downloading" in _status(dialog, "tiny-slow")
    qtbot.mouseClick(dialog.models.cancel_button, Qt.MouseButton.LeftButton)
    assert dialog.models.progress_label.text() == "Cancelling…"
    qtbot.waitUntil(lambda: not dialog.models.downloading, timeout=20_000)
    assert dialog.models.message.text() == "Download cancelled; nothing was installed."
    assert manager.installed() == {}
    assert _leftovers(manager) == []  # no model file, no .part
    qtbot.waitUntil(lambda: len(trickle.sent) >= 1)
    assert trickle.sent[-1] < len(DATA)  # it really was cut short
    assert _status(dialog, "tiny-slow") == "-" and _status(dialog, "tiny-ok") == "-"


def test_cancel_while_the_server_stalls(qtbot, dialog: SettingsDialog,
                                        manager: ModelManager) -> None:
    """The downloader checks the cancel between chunks; a stalled connection that then closes
    ends another way, which still counts as the cancel and leaves no part file."""
    dialog.models.refresh()
    dialog.models.download_model("tiny-stall")
    qtbot.waitUntil(lambda: dialog.models.progress.value() > 0, timeout=10_000)
    dialog.models.cancel_download()
    qtbot.waitUntil(lambda: not dialog.models.downloading, timeout=10_000)
    assert dialog.models.message.text() == "Download cancelled; nothing was installed."
    assert manager.installed() == {} and _leftovers(manager) == []


@pytest.mark.parametrize(("name", "message"), [
    ("tiny-missing", "not found on the server (HTTP 404)"),
    ("tiny-corrupt", "checksum mismatch"),
])
def test_download_errors_are_shown_in_the_dialog(qtbot, dialog: SettingsDialog,
                                                 manager: ModelManager, name: str,
                                                 message: str) -> None:
    dialog.models.refresh()
    dialog.models.download_model(name)
    qtbot.waitUntil(lambda: not dialog.models.downloading, timeout=20_000)
    text = dialog.models.message.text()
    assert text.startswith("Download failed: ") and message in text
    assert "b3261e" in dialog.models.message.styleSheet()  # shown as an error
    assert manager.installed() == {} and _leftovers(manager) == []
    assert dialog.models.import_button.isEnabled()  # the dialog carries on


def test_closing_during_a_download_cancels_it(qtbot, dialog: SettingsDialog,
                                              manager: ModelManager) -> None:
    dialog.models.refresh()
    dialog.show()
    dialog.models.download_model("tiny-slow")
    qtbot.waitUntil(lambda: dialog.models.progress_label.text().startswith("tiny-slow: "),
                    timeout=20_000)
    dialog.reject()
    assert dialog.questions and "still downloading" in dialog.questions[-1]  # type: ignore[attr-defined]
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=20_000)
    assert manager.installed() == {} and _leftovers(manager) == []


def test_without_a_model_manager_the_tab_says_why(service: DaybookService, fake_devices,
                                                  open_dialog) -> None:
    service.models = None
    dialog = open_dialog()
    assert "not available" in dialog.models.unavailable.text()
    assert "embedded defaults" in dialog.models.unavailable.text()
    assert dialog.models.table_model.rowCount() == 0
    assert not dialog.models.import_button.isEnabled()
    assert "moonshine" in dialog.models.in_use.text()


# --- import and remove ------------------------------------------------------------------------

def test_import_a_tiny_gguf_then_a_truncated_one_then_remove(qtbot, dialog: SettingsDialog,
                                                             manager: ModelManager,
                                                             tmp_path: Path) -> None:
    dialog.models.refresh()
    good = tinymodels.make_tiny_llama_gguf(tmp_path / "tiny-llama.gguf")
    dialog.models.import_model(good, "llm")
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
    assert dialog.models.message.text().startswith("Imported tiny-llama as language model")
    assert manager.installed()["tiny-llama"].origin == "import"
    assert _status(dialog, "tiny-llama") == "installed"
    row = dialog.models.table_model.rows[dialog.models.table_model.row_of("tiny-llama")]
    assert row.licence == "(your own file)" and not row.in_catalog

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(good.read_bytes()[:100])
    dialog.models.import_model(bad, "llm")
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
    assert "Cannot import: broken.gguf: truncated GGUF file" in dialog.models.message.text()
    assert "broken" not in manager.installed()

    dialog.models.select("tiny-llama")
    dialog.confirm = lambda title, question: False  # type: ignore[method-assign]
    qtbot.mouseClick(dialog.models.remove_button, Qt.MouseButton.LeftButton)
    assert "tiny-llama" in manager.installed()
    dialog.confirm = lambda title, question: True  # type: ignore[method-assign]
    qtbot.mouseClick(dialog.models.remove_button, Qt.MouseButton.LeftButton)
    assert manager.installed() == {} and _leftovers(manager) == []
    assert dialog.models.message.text() == "Removed tiny-llama."
    assert dialog.models.table_model.row_of("tiny-llama") == -1


def test_import_button_asks_for_the_file_and_the_role(qtbot, dialog: SettingsDialog,
                                                      manager: ModelManager, monkeypatch,
                                                      tmp_path: Path) -> None:
    path = tinymodels.make_tiny_llama_gguf(tmp_path / "mine.gguf")
    asked: list[tuple[list[str], int]] = []
    monkeypatch.setattr(settings_models.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))

    def get_item(parent, title, label, items, current, editable):
        asked.append((items, current))
        return items[current], True

    monkeypatch.setattr(settings_models.QInputDialog, "getItem", staticmethod(get_item))
    dialog.models.refresh()
    qtbot.mouseClick(dialog.models.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
    items, current = asked[0]
    assert items[current] == "language model (llm)"  # guessed from the GGUF magic
    assert manager.installed()["mine"].role == "llm"


# --- saving -------------------------------------------------------------------------------------

def test_save_writes_a_toml_that_load_config_reads_back(qtbot, dialog: SettingsDialog,
                                                        open_dialog, tmp_path: Path) -> None:
    d = dialog
    d.devices.microphone.setCurrentIndex(d.devices.microphone.findText("(none)"))
    d.devices.camera.setCurrentIndex(d.devices.camera.findText("File or stream URL"))
    assert d.devices.camera_url.isEnabled()
    d.devices.camera_url.setText(" rtsp://cam.local/live ")
    d.assistant.wake_name.setText("Ada")
    d.assistant.speak.setCurrentIndex(d.assistant.speak.findData("always"))
    d.assistant.rate.setValue(150)
    d.assistant.volume.setValue(70)
    d.assistant.output.setCurrentIndex(d.assistant.output.findData(""))  # text only
    d.assistant.barge_in.setChecked(False)
    d.privacy.retention_days.setValue(30)
    d.privacy.incognito_minutes.setValue(5)
    d.privacy.data_dir.edit.setText(str(tmp_path / "elsewhere"))
    d.models.folder.edit.setText(str(tmp_path / "weights"))
    with qtbot.waitSignal(d.configSaved, timeout=2000) as saved:
        qtbot.mouseClick(d.apply_button, Qt.MouseButton.LeftButton)
    cfg = load_config(d.config_path)
    assert saved.args[0] == cfg
    assert cfg.capture.microphone == "" and cfg.capture.camera == "rtsp://cam.local/live"
    assert cfg.assistant.wake_name == "Ada"
    assert (cfg.assistant.speak, cfg.assistant.rate_wpm, cfg.assistant.volume,
            cfg.assistant.output, cfg.assistant.barge_in) == ("always", 150, 70, "", False)
    assert cfg.assistant.echo_cancellation  # untouched
    assert cfg.privacy.retention_days == 30 and cfg.privacy.incognito_minutes == 5
    assert cfg.storage.data_dir == str(tmp_path / "elsewhere")
    assert cfg.models.dir == str(tmp_path / "weights")
    assert cfg.vad == Config().vad  # untouched sections keep their defaults
    status = d.status.text()
    assert "Switching to the new devices." in status
    assert "Restart Daybook to use the new data folder and models folder" in status

    again = open_dialog()  # a new dialog shows what the file says
    assert again.assistant.wake_name.text() == "Ada"
    assert again.assistant.speak.currentData() == "always"
    assert again.assistant.rate.value() == 150 and again.assistant.output.currentData() == ""
    assert again.devices.microphone.currentText() == "(none)"
    assert again.devices.camera.currentText() == "File or stream URL"
    assert again.devices.camera_url.text() == "rtsp://cam.local/live"
    assert again.privacy.retention_days.text() == "30 days"


def test_keep_forever_and_ok_closes(qtbot, dialog: SettingsDialog) -> None:
    dialog.show()
    assert dialog.privacy.retention_days.text() == "Keep forever"
    dialog.assistant.wake_name.setText("Jeeves")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and dialog.result() == 1
    cfg = load_config(dialog.config_path)
    assert cfg.privacy.retention_days == 0 and cfg.assistant.wake_name == "Jeeves"


@pytest.mark.parametrize(("change", "field", "tab"), [
    (lambda d: d.assistant.wake_name.setText("   "), "[assistant] wake_name", 2),
    (lambda d: d.privacy.data_dir.edit.setText("relative/folder"), "[storage] data_dir", 3),
    (lambda d: (d.devices.camera.setCurrentIndex(d.devices.camera.findText("File or stream URL")),
                d.devices.camera_url.setText("")), "[capture] camera", 0),
])
def test_an_invalid_value_is_rejected_with_the_field_named(qtbot, dialog: SettingsDialog,
                                                           change, field: str, tab: int) -> None:
    dialog.show()
    dialog.tabs.setCurrentIndex(1)
    change(dialog)
    with qtbot.assertNotEmitted(dialog.configSaved):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()  # OK did not close it
    assert dialog.status.text().startswith("Not saved: ") and field in dialog.status.text()
    assert dialog.tabs.currentIndex() == tab  # the tab holding the field is shown
    assert not dialog.config_path.exists()


def test_validation_follows_the_config_rules() -> None:
    with pytest.raises(ConfigError, match=r"\[privacy\] retention_days: -1 is out of range"):
        validate_config(Config().replace(privacy={"retention_days": -1}))
    with pytest.raises(ConfigError, match=r"\[models\] dir: .* is a file"):
        validate_config(Config().replace(models={"dir": __file__}))
    cfg = Config().replace(assistant={"wake_name": "Ada"})
    assert validate_config(cfg) == cfg


def test_spin_box_ranges_come_from_the_config(dialog: SettingsDialog) -> None:
    assert (dialog.privacy.retention_days.minimum(),
            dialog.privacy.retention_days.maximum()) == (0, 36_500)
    assert (dialog.privacy.incognito_minutes.minimum(),
            dialog.privacy.incognito_minutes.maximum()) == (1, 1440)


def test_an_unreadable_config_file_is_reported(service, fake_devices, open_dialog,
                                               tmp_path: Path) -> None:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text("[privacy]\nretention_days = -5\n")
    dialog = open_dialog()
    assert "retention_days" in dialog.status.text()
    assert dialog.privacy.retention_days.text() == "Keep forever"  # the running config


# --- privacy & storage --------------------------------------------------------------------------

def _remember(service: DaybookService) -> dict[str, Path]:
    vecs = service.embedder.embed(["eggs for breakfast", "the meeting is at three",
                                   "water the plants"])
    image = np.full((48, 64, 3), 120, np.uint8)
    key = service.key_frames.write(image, DAY + 5, DAY + 20)
    late_key = service.key_frames.write(image, DAY + 7200, DAY + 7210)
    items = [
        (Moment("utt-1", "utterance", DAY + 10, DAY + 12, "eggs for breakfast"), vecs[0]),
        (Moment("utt-2", "utterance", DAY + 60, DAY + 62, "the meeting is at three"), vecs[1]),
        (Moment("clip-1", "clip", DAY + 5, DAY + 20, key_frame=key, n_frames=16),
         np.ones(256, np.float32) / 16),
        (Moment("utt-3", "utterance", DAY + 7200, DAY + 7202, "water the plants"), vecs[2]),
        (Moment("clip-2", "clip", DAY + 7200, DAY + 7210, key_frame=late_key, n_frames=4),
         np.ones(256, np.float32) / 16),
    ]
    service.store.add(items, service.embedder.name)
    return {"early": service.key_frames.absolute(key), "late": service.key_frames.absolute(late_key)}


def _set_range(dialog: SettingsDialog, t0_s: float, t1_s: float) -> None:
    dialog.privacy.range_from.setDateTime(QDateTime.fromSecsSinceEpoch(int(t0_s)))
    dialog.privacy.range_to.setDateTime(QDateTime.fromSecsSinceEpoch(int(t1_s)))


def test_delete_range_forgets_moments_and_key_frames(qtbot, service: DaybookService,
                                                     fake_devices, open_dialog) -> None:
    frames = _remember(service)
    day = time.strftime("%Y-%m-%d", time.localtime(DAY))
    dialog = open_dialog(answer=False)
    _set_range(dialog, DAY - 60, DAY + 3600)
    qtbot.mouseClick(dialog.privacy.delete_button, Qt.MouseButton.LeftButton)
    assert "cannot be undone" in dialog.questions[-1]  # type: ignore[attr-defined]
    assert len(service.moments_on_day(day)) == 5  # declined: nothing happened

    dialog.confirm = lambda title, question: True  # type: ignore[method-assign]
    qtbot.mouseClick(dialog.privacy.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
    assert dialog.privacy.delete_result.text().startswith("Deleted 3 moments between ")
    assert {m.id for m in service.moments_on_day(day)} == {"utt-3", "clip-2"}
    assert not frames["early"].exists() and frames["late"].exists()
    assert "file" in dialog.privacy.usage.text()  # measured again afterwards

    _set_range(dialog, DAY - 60, DAY + 3600)
    qtbot.mouseClick(dialog.privacy.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.tasks.busy, timeout=10_000)
    assert dialog.privacy.delete_result.text().startswith("Nothing was remembered between ")


def test_delete_range_needs_an_end_after_its_start(dialog: SettingsDialog) -> None:
    _set_range(dialog, DAY + 100, DAY)
    dialog.privacy.delete_button.click()
    assert "end of the range must be after its start" in dialog.privacy.delete_result.text()
    assert dialog.questions == []  # type: ignore[attr-defined]


def test_disk_usage_of_the_memory_folder(dialog: SettingsDialog,
                                         service: DaybookService) -> None:
    size, files = settings_privacy.folder_usage(service.paths.memory)
    assert files > 0
    assert dialog.privacy.usage.text().startswith(f"{fmt_bytes(size)} in {files:,} file")
    assert str(service.paths.memory) in dialog.privacy.usage.text()


# --- the background-task plumbing -------------------------------------------------------------

def test_background_work_runs_off_the_gui_thread_and_callbacks_on_it(qtbot) -> None:
    tasks = TaskGroup()
    where: dict[str, str] = {}
    progress: list[object] = []

    def work(report: Callable[[object], None]) -> int:
        where["work"] = threading.current_thread().name
        report(1)
        report(2)
        return 42

    def done(result: int) -> None:
        where["done"] = threading.current_thread().name
        where["result"] = str(result)

    tasks.run("sum", work, done, lambda exc: None, progress.append)
    assert tasks.running() == ["sum"]
    qtbot.waitUntil(lambda: not tasks.busy, timeout=5000)
    assert where == {"work": "job-sum", "done": threading.main_thread().name,
                     "result": "42"}
    assert progress == [1, 2]

    errors: list[BaseException] = []
    tasks.run("fail", lambda report: 1 / 0, done, errors.append)
    qtbot.waitUntil(lambda: not tasks.busy, timeout=5000)
    assert isinstance(errors[0], ZeroDivisionError)

    tasks.shutdown()  # the dialog is gone: results are dropped
    tasks.run("late", lambda report: 7, done, errors.append)
    qtbot.waitUntil(lambda: not tasks.busy, timeout=5000)
    assert where["result"] == "42"
