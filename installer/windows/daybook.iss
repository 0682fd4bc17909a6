; Inno Setup 6 script for Daybook: a per-user install (no administrator), a Start-menu
; shortcut, an uninstaller that leaves the user's memory (%LOCALAPPDATA%\daybook) alone.
; Built by `python installer/build.py windows`, which passes AppVersion, BundleDir (the
; PyInstaller folder, dist\daybook) and OutputDir. Written from Inno Setup's documentation
; (https://jrsoftware.org/ishelp/); not run on this project's build machines.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\daybook"
#endif
#ifndef Icon
  #define Icon "daybook.ico"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif

[Setup]
AppId={{5B0F3C1E-7A4D-4C57-9E1B-DAYB00C0FFEE}
AppName=Daybook
AppVersion={#AppVersion}
AppPublisher=Daybook developers
DefaultDirName={localappdata}\Programs\Daybook
DefaultGroupName=Daybook
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename=Daybook-{#AppVersion}-setup
SetupIconFile={#Icon}
UninstallDisplayIcon={app}\daybook.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
LicenseFile=..\..\LICENSE

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Daybook"; Filename: "{app}\daybook.exe"; Comment: "Remembers your day and answers out loud"
Name: "{group}\Uninstall Daybook"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Daybook"; Filename: "{app}\daybook.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\daybook.exe"; Description: "{cm:LaunchProgram,Daybook}"; Flags: nowait postinstall skipifsilent runhidden

; Nothing under [UninstallDelete]: the memory lives in the user's data folder, which the app
; made and the user owns (Settings, Privacy deletes it from inside the app).
