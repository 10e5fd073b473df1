# vmkit's first-logon script for unattended Windows installs.
#
# Windows runs it from the answer media at the first (automatic) logon, once per step, as the
# FirstLogonCommands of Autounattend.xml list them. It holds no values of its own: the public key is
# read from the file beside it, so nothing a user typed is ever pasted into code. Every step logs to
# C:\ProgramData\vmkit\firstlogon.log and stops at the first error.
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('GuestTools', 'OpenSsh', 'AuthorizeKey', 'Firewall')]
    [string] $Step
)

$ErrorActionPreference = 'Stop'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$logDir = Join-Path $env:ProgramData 'vmkit'
New-Item -ItemType Directory -Force -Path $logDir | Out-Null
Start-Transcript -Append -Path (Join-Path $logDir 'firstlogon.log') | Out-Null

function Find-OnDrives([string] $relative) {
    Get-PSDrive -PSProvider FileSystem |
        ForEach-Object { Join-Path $_.Root $relative } |
        Where-Object { Test-Path $_ } |
        Select-Object -First 1
}

try {
    switch ($Step) {
        'GuestTools' {
            # The installer at the root of the VirtIO media (virtio-win 0.1.2xx and later).
            $installer = Find-OnDrives 'virtio-win-guest-tools.exe'
            if (-not $installer) { throw 'virtio-win-guest-tools.exe is on no drive: is the VirtIO media attached?' }
            $p = Start-Process -FilePath $installer -ArgumentList '/install', '/quiet', '/norestart' -Wait -PassThru
            # 3010: success, a reboot is needed to finish.
            if ($p.ExitCode -ne 0 -and $p.ExitCode -ne 3010) { throw "guest tools installer exited with $($p.ExitCode)" }
        }
        'OpenSsh' {
            $cap = Get-WindowsCapability -Online -Name 'OpenSSH.Server*' | Select-Object -First 1
            if (-not $cap) { throw 'this Windows offers no OpenSSH.Server capability' }
            if ($cap.State -ne 'Installed') { Add-WindowsCapability -Online -Name $cap.Name | Out-Null }
            Set-Service -Name sshd -StartupType Automatic
            # The first start writes C:\ProgramData\ssh (sshd_config, host keys).
            Start-Service -Name sshd
            New-ItemProperty -Path 'HKLM:\SOFTWARE\OpenSSH' -Name DefaultShell -PropertyType String -Force `
                -Value (Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe') | Out-Null
        }
        'AuthorizeKey' {
            $target = Join-Path $env:ProgramData 'ssh\administrators_authorized_keys'
            Copy-Item -Force -Path (Join-Path $here 'vmkit-authorized-keys') -Destination $target
            # sshd ignores the file unless only Administrators and SYSTEM may write it. Well-known SIDs, so a
            # localised Windows (Administratoren, Administrateurs, ...) gets the same ACL.
            & icacls.exe $target /inheritance:r /grant '*S-1-5-32-544:F' /grant '*S-1-5-18:F' | Out-Null
            if ($LASTEXITCODE -ne 0) { throw "icacls exited with $LASTEXITCODE" }
            Restart-Service -Name sshd
        }
        'Firewall' {
            if (-not (Get-NetFirewallRule -Name 'vmkit-sshd' -ErrorAction SilentlyContinue)) {
                New-NetFirewallRule -Name 'vmkit-sshd' -DisplayName 'OpenSSH Server (vmkit)' -Enabled True `
                    -Direction Inbound -Protocol TCP -LocalPort 22 -Action Allow -Profile Any | Out-Null
            }
        }
    }
    Write-Output "vmkit first logon: $Step done"
} catch {
    Write-Output "vmkit first logon: $Step FAILED: $_"
    exit 1
} finally {
    Stop-Transcript | Out-Null
}
