# A desktop written in Nix (the docs' example): 2 MiB huge pages computed from the VMs, a Windows VM with a
# passed-through GPU shown through Looking Glass (CPU vendor left to be set), and a Linux VM with shares.
{
  enable = true;
  profile = "always-on";
  hugepages.size = "2M";
  firewallPorts.spice = true;
  gpuPassthrough = {
    enable = true;
    pciIDs = [
      "10DE:2484"
      "10de:228b"
    ];
  };
  lookingGlass.enable = true;
  vms = {
    win11 = {
      osType = "windows";
      memory = "16G";
      vcpus = 8;
      diskSize = "200G";
      cpuPinning = [
        "2"
        "3"
        "4"
        "5"
        "10"
        "11"
        "12"
        "13"
      ];
      display = "looking-glass";
      pciDevices = [
        "0000:0b:00.0"
        "0000:0b:00.1"
      ];
      memballoon.enable = false;
      extraDevices = [ "<watchdog model='i6300esb' action='reset'/>" ];
    };
    dev = {
      memory = "8G";
      vcpus = 4;
      diskSize = "60G";
      autoStart = false;
      sharedFolders.projects = "/home/alice/projects";
      ssh = {
        user = "alice";
        port = 22;
      };
    };
    old = {
      enable = false;
      memory = "2G";
    };
  };
}
