# What the host needs for a desktop VM config, as the NixOS module sets it. Needs no nixpkgs.
#
#   import ./desktop-host.nix settings  ->  { kernelParams; sysctl; mounts; tmpfiles; initrdKernelModules; notes; }
#
# `settings` is the rendered config (desktop-render.nix), so unset options are absent and take vmkit's defaults
# here too. This is the Nix side of `vmkit desktop host-plan`: the same kernel parameters in the same order, the
# same sysctl, mounts and tmpfiles rules; a test compares the two for every example config. On other systems
# vmkit prints these; on NixOS the module makes them options (boot.kernelParams, boot.kernel.sysctl,
# fileSystems, systemd.tmpfiles.rules, boot.initrd.kernelModules).
settings:

let
  inherit (builtins)
    attrValues
    concatStringsSep
    filter
    foldl'
    genList
    head
    length
    match
    stringLength
    substring
    ;

  get = set: name: default: if set ? ${name} && set.${name} != null then set.${name} else default;
  any = pred: list: length (filter pred list) > 0;

  digit = c: (match "[0-9]" c != null);
  # A decimal number without builtins.fromJSON (which rejects leading zeros).
  toInt =
    s:
    foldl' (acc: i: acc * 10 + (builtins.fromJSON (substring i 1 s))) 0 (genList (i: i) (stringLength s));
  units = {
    K = 1024;
    M = 1024 * 1024;
    G = 1024 * 1024 * 1024;
    T = 1024 * 1024 * 1024 * 1024;
  };
  upper = builtins.replaceStrings [ "k" "m" "g" "t" ] [ "K" "M" "G" "T" ];
  # "16G", "512m", "16GiB" -> bytes (the spellings vmkit accepts).
  sizeBytes =
    s:
    let
      m = match "([0-9]+)([KMGTkmgt])(iB)?" s;
    in
    if m == null then throw "desktop-host.nix: invalid size \"${s}\"" else toInt (head m) * units.${upper (builtins.elemAt m 1)};
  ceilDiv = a: b: (a + b - 1) / b;
  lower = builtins.replaceStrings [ "A" "B" "C" "D" "E" "F" ] [ "a" "b" "c" "d" "e" "f" ];

  enable = get settings "enable" false;
  profile = get settings "profile" "occasional";
  hp = get settings "hugepages" { };
  hpEnable = get hp "enable" (profile == "always-on");
  hpSize = get hp "size" "2M";
  pageBytes = if hpSize == "1G" then units.G else 2 * units.M;
  vms = filter (vm: enable && get vm "enable" true) (attrValues (get settings "vms" { }));
  vmNames = filter (n: enable && get (settings.vms.${n}) "enable" true) (builtins.attrNames (get settings "vms" { }));
  needed = foldl' (acc: vm: acc + ceilDiv (sizeBytes (get vm "memory" "4G")) pageBytes) 0 vms;
  count = if hpEnable then get hp "count" needed else get hp "count" 0;

  gpu = get settings "gpuPassthrough" { };
  gpuEnable = get gpu "enable" false;
  pciIDs = get gpu "pciIDs" [ ];
  cpuVendor = get gpu "cpuVendor" null;
  passthrough = any (vm: get vm "pciDevices" [ ] != [ ]) vms;
  macos = any (vm: get vm "osType" "linux" == "macos") vms;
  lg = get settings "lookingGlass" { };
  lgEnable = get lg "enable" false && any (vm: get vm "display" "spice" == "looking-glass") vms;
  fw = get settings "firewallPorts" null;

  hugepageParams =
    if !(hpEnable && count > 0) then
      [ ]
    else if hpSize == "1G" then
      [
        "default_hugepagesz=1G"
        "hugepagesz=1G"
        "hugepages=${toString count}"
      ]
    else
      [ "hugepages=${toString count}" ];
  iommuParams =
    if !(gpuEnable || passthrough) then
      [ ]
    else
      (
        if cpuVendor == "intel" then
          [ "intel_iommu=on" ]
        else if cpuVendor == "amd" then
          [ "amd_iommu=on" ]
        else
          [ ]
      )
      ++ [ "iommu=pt" ];
  vfio = gpuEnable && pciIDs != [ ];
  vfioParams = if vfio then [ "vfio-pci.ids=${concatStringsSep "," (map lower pciIDs)}" ] else [ ];
  macosParams =
    if macos then
      [
        "kvm.ignore_msrs=1"
        "kvm.report_ignored_msrs=0"
      ]
    else
      [ ];
in
{
  kernelParams = hugepageParams ++ iommuParams ++ vfioParams ++ macosParams;
  sysctl = if hpEnable && count > 0 && hpSize == "2M" then { "vm.nr_hugepages" = count; } else { };
  mounts =
    if hpEnable && count > 0 then
      [
        {
          what = "hugetlbfs";
          target = if hpSize == "1G" then "/dev/hugepages1G" else "/dev/hugepages";
          fstype = "hugetlbfs";
          options = "pagesize=${hpSize}";
        }
      ]
    else
      [ ];
  tmpfiles = if lgEnable then [ "f /dev/shm/looking-glass 0660 ${get lg "user" "root"} kvm -" ] else [ ];
  initrdKernelModules =
    if vfio then
      [
        "vfio_pci"
        "vfio"
        "vfio_iommu_type1"
      ]
    else
      [ ];
  notes =
    (
      if (gpuEnable || passthrough) && cpuVendor == null then
        [
          {
            id = "cpu-vendor";
            text = "virtualisation.desktopVMs.gpuPassthrough.cpuVendor is not set: the IOMMU kernel parameter (intel_iommu=on or amd_iommu=on) is not added; set it to \"intel\" or \"amd\"";
          }
        ]
      else
        [ ]
    )
    ++ (
      if vfio then
        [
          {
            id = "vfio-initrd";
            text = "vfio-pci must load before the GPU driver: vfio, vfio_iommu_type1 and vfio_pci go into the initramfs";
          }
        ]
      else
        [ ]
    )
    ++ (
      if fw != null && (get fw "spice" true || get fw "vnc" false) then
        [
          {
            id = "firewall";
            text = "virtualisation.desktopVMs.firewallPorts: no port is opened; SPICE and VNC listen on 127.0.0.1 only. Reach them from another machine through SSH (virt-viewer --connect qemu+ssh://HOST/system NAME)";
          }
        ]
      else
        [ ]
    );
  # For the module's messages: the VMs this config defines.
  enabledVms = vmNames;
}
