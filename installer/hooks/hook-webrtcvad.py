# webrtcvad comes from the webrtcvad-wheels distribution, which it asks for its version
# (pyinstaller-hooks-contrib's own hook copies the metadata of "webrtcvad", not installed here).
from PyInstaller.utils.hooks import copy_metadata

datas = copy_metadata("webrtcvad-wheels")
