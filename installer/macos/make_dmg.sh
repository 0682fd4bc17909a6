#!/usr/bin/env bash
# Wraps Daybook.app in a compressed disk image with a link to /Applications.
# Usage: installer/macos/make_dmg.sh dist/Daybook.app dist/Daybook-<version>.dmg
# Uses only hdiutil (part of macOS). Written from its manual page; not run on this project's
# build machines. Unsigned: Gatekeeper asks the user to open it with right-click, Open, until
# the app is signed and notarised (codesign, xcrun notarytool) with a Developer ID.
set -euo pipefail
app="$1"
dmg="$2"
[ -d "$app" ] || { echo "make_dmg.sh: $app is not an app bundle" >&2; exit 2; }
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
hdiutil create -volname Daybook -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
echo "make_dmg.sh: $dmg"
