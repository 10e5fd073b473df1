# The NixOS module: `virtualisation.desktopVMs`, declared desktop VMs that vmkit defines in libvirt.
#
# The options are vmkit's desktop config, built from the schema vmkit prints (`vmkit desktop schema --json`,
# kept as ./desktop-options.json; a test fails when the two differ): the same names, types, defaults and
# descriptions as the TOML file, so settings of the original `virtualisation.desktopVMs` module carry over
# unchanged. A value in the wrong format (a size like "16 GB", a malformed PCI address) is a type error at its
# option path; what needs more than the format (a cpuset that runs backwards, a multicast MAC, a hugepage
# multiple) is checked by vmkit when the system is built, with the option path in the message.
#
# What the module does with them:
# - renders them to JSON (./desktop-render.nix) in the store: `virtualisation.desktopVMs.configFile`;
# - a oneshot unit after libvirtd runs `vmkit desktop apply` on that file at boot and whenever it changes
#   (`--prune` only with `prune = true`);
# - puts `vm-<name>` commands on the system PATH (written by `vmkit desktop scripts`, which also checks the
#   config while the system is built);
# - sets what the host needs (./desktop-host.nix, the Nix side of `vmkit desktop host-plan`): huge pages
#   (kernel parameters, sysctl, hugetlbfs mount), IOMMU parameters and vfio-pci binding, kvm.ignore_msrs for
#   macOS, the Looking Glass shared memory file; `configureHost = false` leaves all of that to you.
{
  config,
  lib,
  pkgs,
  options,
  ...
}:

let
  inherit (lib)
    mkOption
    mkIf
    mkMerge
    mkDefault
    types
    ;

  cfg = config.virtualisation.desktopVMs;
  opt = options.virtualisation.desktopVMs;
  schema = builtins.fromJSON (builtins.readFile ./desktop-options.json);
  render = import ./desktop-render.nix { inherit schema; };
  hostPlan = import ./desktop-host.nix;

  formatType =
    f:
    types.strMatching f.pattern
    // {
      description = "${f.name}: ${f.description}, e.g. \"${f.example}\"";
    };

  typeOf =
    t:
    if t.kind == "bool" then
      types.bool
    else if t.kind == "int" then
      types.ints.between t.min t.max
    else if t.kind == "text" then
      types.str
    else if t.kind == "string" then
      formatType t.format
    else if t.kind == "enum" then
      types.enum t.values
    else if t.kind == "list" then
      types.listOf (typeOf t.of)
    else if t.kind == "oneOrList" then
      types.either (typeOf t.of) (types.listOf (typeOf t.of))
    else if t.kind == "attrs" then
      types.attrsOf (typeOf t.of)
    else if t.kind == "submodule" then
      types.submodule { options = mkOptions t.options; }
    else
      throw "desktop-options.json: unknown type kind ${t.kind}";

  mkOpt =
    o:
    let
      required = o.required or false;
      base = typeOf o.type;
    in
    mkOption (
      {
        type = if !required && o.default == null then types.nullOr base else base;
        description = o.description + lib.optionalString o.extension "\n\n(vmkit extension: not in the original module.)";
      }
      // lib.optionalAttrs (!required) { inherit (o) default; }
      // lib.optionalAttrs (o ? defaultText) { defaultText = lib.literalMD "unset (`null`): ${o.defaultText}"; }
    );

  mkOptions =
    opts:
    builtins.listToAttrs (
      map (o: {
        name = o.name;
        value = mkOpt o;
      }) opts
    );

  # Options of this module that are not vmkit config.
  moduleOnly = [
    "package"
    "prune"
    "configureHost"
    "connect"
    "configFile"
  ];

  # firewallPorts reaches vmkit only when it was set (vmkit then says that no port is opened).
  firewallGiven = opt.firewallPorts.highestPrio < (lib.mkOptionDefault { }).priority;
  settings = render (
    builtins.removeAttrs cfg (moduleOnly ++ lib.optional (!firewallGiven) "firewallPorts")
  );
  configFile = pkgs.writeText "vmkit-desktop-vms.json" (builtins.toJSON settings);
  host = hostPlan settings;

  vmNameFormat = (lib.findFirst (o: o.name == "vms") null schema.options).type.key;
  vmSchema = (lib.findFirst (o: o.name == "vms") null schema.options).type.of.options;
  tagFormat = (lib.findFirst (o: o.name == "sharedFolders") null vmSchema).type.key;

  launchers =
    pkgs.runCommand "vmkit-desktop-launchers"
      {
        nativeBuildInputs = [ cfg.package ];
      }
      ''
        vmkit desktop scripts --skip-path-checks --connect ${lib.escapeShellArg cfg.connect} \
          --vmkit ${lib.getExe cfg.package} ${configFile} $out/bin
      '';
in
{
  options.virtualisation.desktopVMs = mkOptions schema.options // {
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { } (vmkit from this repository)";
      description = "The vmkit package.";
    };
    prune = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run `vmkit desktop apply --prune`: undefine the domains vmkit defined that are no longer declared (or are
        disabled). Their disk volumes, NVRAM and TPM state stay. Off by default, as in vmkit.
      '';
    };
    configureHost = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Set the host settings the VMs need as NixOS options: huge pages (boot.kernelParams, boot.kernel.sysctl,
        a hugetlbfs mount), IOMMU kernel parameters and vfio-pci binding (with vfio in the initrd),
        kvm.ignore_msrs for macOS guests, and the Looking Glass shared memory file (systemd.tmpfiles.rules).
        They are what `vmkit desktop host-plan` lists.
      '';
    };
    connect = mkOption {
      type = types.str;
      default = "qemu:///system";
      description = "The libvirt URI the unit and the vm-<name> commands use.";
    };
    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "The JSON file vmkit reads: these options, rendered (set by the module).";
    };
  };

  config = mkMerge [
    { virtualisation.desktopVMs.configFile = configFile; }
    (mkIf cfg.enable (mkMerge [
    {
      assertions =
        lib.mapAttrsToList (name: _: {
          assertion = builtins.match vmNameFormat.pattern name != null;
          message = "virtualisation.desktopVMs.vms.\"${name}\": invalid VM name: ${vmNameFormat.description}";
        }) cfg.vms
        ++ lib.concatLists (
          lib.mapAttrsToList (
            name: vm:
            lib.mapAttrsToList (tag: _: {
              assertion = builtins.match tagFormat.pattern tag != null;
              message = "virtualisation.desktopVMs.vms.${name}.sharedFolders.\"${tag}\": invalid tag: ${tagFormat.description}";
            }) vm.sharedFolders
          ) cfg.vms
        );

      virtualisation.desktopVMs = {
        # Firmware and virtiofsd from nixpkgs, so vmkit need not discover them.
        ovmf = {
          secureCode = mkDefault "${pkgs.OVMFFull.fd}/FV/OVMF_CODE.ms.fd";
          secureVars = mkDefault "${pkgs.OVMFFull.fd}/FV/OVMF_VARS.ms.fd";
          code = mkDefault "${pkgs.OVMF.fd}/FV/OVMF_CODE.fd";
          vars = mkDefault "${pkgs.OVMF.fd}/FV/OVMF_VARS.fd";
        };
        virtiofsd = mkDefault "${pkgs.virtiofsd}/bin/virtiofsd";
      };

      virtualisation.libvirtd.enable = true;
      environment.systemPackages = [
        cfg.package
        launchers
      ];

      systemd.services.vmkit-desktop-vms = {
        description = "vmkit: define the declared desktop VMs in libvirt";
        wantedBy = [ "multi-user.target" ];
        requires = [ "libvirtd.service" ];
        after = [ "libvirtd.service" ];
        restartTriggers = [ configFile ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = lib.escapeShellArgs (
            [
              (lib.getExe cfg.package)
              "desktop"
              "apply"
              "--connect"
              cfg.connect
              "${configFile}"
            ]
            ++ lib.optional cfg.prune "--prune"
          );
        };
      };
    }
    (mkIf cfg.configureHost {
      boot.kernelParams = host.kernelParams;
      boot.kernel.sysctl = host.sysctl;
      boot.initrd.kernelModules = host.initrdKernelModules;
      # nofail: a host whose CPU lacks the page size still boots (the VMs then fail to start, and
      # `vmkit desktop host-plan` says why) instead of stopping in emergency mode.
      fileSystems = builtins.listToAttrs (
        map (m: {
          name = m.target;
          value = {
            device = m.what;
            fsType = m.fstype;
            options = [
              m.options
              "nofail"
            ];
          };
        }) host.mounts
      );
      systemd.tmpfiles.rules = host.tmpfiles;
      warnings = map (n: n.text) (builtins.filter (n: n.id != "vfio-initrd") host.notes);
    })
  ]))
  ];
}
