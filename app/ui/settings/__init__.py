"""The settings dialog, a module per tab: devices.py, models.py (with model_table.py),
assistant.py and privacy.py, the shared small widgets in common.py, and the dialog that holds
the tabs and saves the config in dialog.py. The work the tabs hand to helper threads needs no Qt
and lives outside app/ui (app/capture/devices.py, app/models/rows.py, app/memory/usage.py,
app/speech/voices.py, app/core/config_check.py). The names other code uses are re-exported here.
"""

from app.capture.devices import NO_MICROPHONE
from app.core.config_check import validate_config
from app.ui.settings.assistant import AssistantTab
from app.ui.settings.devices import DevicesTab
from app.ui.settings.dialog import SettingsDialog
from app.ui.settings.models import ModelsTab
from app.ui.settings.privacy import PrivacyTab

__all__ = ["NO_MICROPHONE", "AssistantTab", "DevicesTab", "ModelsTab", "PrivacyTab",
           "SettingsDialog", "validate_config"]
