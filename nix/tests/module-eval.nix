# Evaluates the NixOS module (../module.nix) with nixpkgs' lib.evalModules and stand-ins for the NixOS options
# it sets (systemd, environment, boot, fileSystems, virtualisation.libvirtd, assertions, warnings) and for the
# packages it uses, so the module's own options, types and rendering are checked without the rest of NixOS.
# The Rust test crates/vmkit/tests/nix.rs runs it with VMKIT_NIXPKGS_LIB pointing at nixpkgs' lib directory:
#
#   nix-instantiate --store dummy:// --eval --strict --json module-eval.nix --arg lib 'import /path/to/nixpkgs/lib' \
#     --arg settings 'builtins.fromTOML (builtins.readFile ../../examples/desktop/windows.toml)'
{
  lib,
  settings,
  extra ? { },
}:

let
  store = name: "/nix/store/00000000000000000000000000000000-${name}";
  drv = name: attrs: {
    type = "derivation";
    inherit name;
    outPath = store name;
  } // attrs;
  vmkit = drv "vmkit-0.1.0" {
    pname = "vmkit";
    meta.mainProgram = "vmkit";
  };
  pkgs = {
    writeText = name: text: drv name { inherit text; };
    runCommand = name: env: script: drv name { inherit env script; };
    callPackage = _: _: vmkit;
    OVMFFull.fd = store "OVMF-fd";
    OVMF.fd = store "OVMF-plain-fd";
    virtiofsd = store "virtiofsd";
  };

  stubs =
    { lib, ... }:
    let
      inherit (lib) mkOption types;
      list = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      attrs = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    in
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.attrs;
          default = [ ];
        };
        warnings = list;
        virtualisation.libvirtd.enable = mkOption {
          type = types.bool;
          default = false;
        };
        environment.systemPackages = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        systemd.services = mkOption {
          type = types.attrsOf (types.attrsOf types.raw);
          default = { };
        };
        systemd.tmpfiles.rules = list;
        boot.kernelParams = list;
        boot.kernel.sysctl = attrs;
        boot.initrd.kernelModules = list;
        fileSystems = attrs;
      };
    };

  eval = lib.evalModules {
    modules = [
      ../module.nix
      stubs
      {
        _module.args.pkgs = pkgs;
        virtualisation.desktopVMs = settings;
      }
      extra
    ];
  };
  inherit (eval) config options;
  cfg = config.virtualisation.desktopVMs;
  schema = builtins.fromJSON (builtins.readFile ../desktop-options.json);

  # Every option the schema names, as the module declares it, and the names the module has beyond the schema.
  walk =
    prefix: opts: schemaOpts:
    let
      names = builtins.filter (n: n != "_module") (builtins.attrNames opts);
      schemaNames = map (s: s.name) schemaOpts;
    in
    [
      {
        path = "${prefix}*";
        extra = builtins.filter (n: !(builtins.elem n schemaNames)) names;
        missing = builtins.filter (n: !(builtins.elem n names)) schemaNames;
      }
    ]
    ++ builtins.concatMap (
      s:
      let
        o = opts.${s.name};
        path = prefix + s.name;
        sub = o.type.getSubOptions [ ];
      in
      [
        {
          inherit path;
          description = o.description;
          hasDefault = o ? default;
          default = if o ? default then o.default else null;
          type = o.type.description;
        }
      ]
      ++ (
        if s.type.kind == "submodule" then
          walk "${path}." sub s.type.options
        else if s.type.kind == "attrs" && s.type.of.kind == "submodule" then
          walk "${path}.<name>." sub s.type.of.options
        else
          [ ]
      )
    ) (builtins.filter (s: opts ? ${s.name}) schemaOpts);

  moduleOnly = [
    "package"
    "prune"
    "configureHost"
    "connect"
    "configFile"
  ];
  unit = config.systemd.services.vmkit-desktop-vms or null;
in
{
  rendered = builtins.fromJSON cfg.configFile.text;
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  inherit (config) warnings;
  libvirtd = config.virtualisation.libvirtd.enable;
  kernelParams = config.boot.kernelParams;
  sysctl = config.boot.kernel.sysctl;
  initrdKernelModules = config.boot.initrd.kernelModules;
  fileSystems = config.fileSystems;
  tmpfiles = config.systemd.tmpfiles.rules;
  unit =
    if unit == null then
      null
    else
      {
        inherit (unit) after requires wantedBy;
        inherit (unit.serviceConfig) Type ExecStart;
      };
  launchers = map (p: p.script or null) (builtins.filter (p: p.name == "vmkit-desktop-launchers") config.environment.systemPackages);
  options = walk "" (builtins.removeAttrs options.virtualisation.desktopVMs moduleOnly) schema.options;
}
