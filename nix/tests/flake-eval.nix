# Evaluates the flake's outputs (../../flake.nix) with nixpkgs' lib and a stand-in package set in which every
# package is a named placeholder and the builders (buildRustPackage, mkDerivation, fetchurl, writeText, mkShell)
# return their arguments as a derivation-like attribute set. It checks the flake's wiring — which packages,
# inputs, wrappers, apps, module and image functions it exposes — not that nixpkgs builds them.
#
#   nix-instantiate --store dummy:// --eval --strict --json flake-eval.nix --arg lib 'import /path/to/nixpkgs/lib'
{ lib }:

let
  store = name: "/nix/store/00000000000000000000000000000000-${name}";
  drv =
    name: attrs:
    {
      type = "derivation";
      inherit name;
      outPath = store name;
    }
    // attrs;
  placeholders = names: lib.genAttrs names (n: drv n { });

  pkgs = lib.fix (
    self:
    placeholders [
      "pkg-config"
      "clang"
      "makeWrapper"
      "tesseract"
      "leptonica"
      "libvirt"
      "qemu"
      "swtpm"
      "xorriso"
      "e2fsprogs"
      "openssh"
      "libxml2"
      "util-linux"
      "virt-viewer"
      "cargo"
      "rustc"
      "clippy"
      "rustfmt"
      "cargo-nextest"
      "nix"
      "nixfmt-rfc-style"
    ]
    // {
      inherit lib;
      system = "x86_64-linux";
      stdenv.hostPlatform.system = "x86_64-linux";
      callPackage =
        fn: args:
        let
          f = if builtins.isFunction fn then fn else import fn;
        in
        f (builtins.intersectAttrs (builtins.functionArgs f) self // args);
      rustPlatform = {
        buildRustPackage = a: drv "${a.pname}-${a.version}" (a // a.passthru or { });
        bindgenHook = drv "bindgen-hook" { };
      };
      stdenvNoCC.mkDerivation = a: drv a.pname a;
      fetchurl = a: drv a.name a;
      writeText = name: text: drv name { inherit text; };
      mkShell = a: drv "shell" a;
    }
  );

  flake = import ../../flake.nix;
  outputs = flake.outputs {
    self = outputs;
    nixpkgs = {
      inherit lib;
      legacyPackages.x86_64-linux = pkgs;
    };
  };
  names = map (p: p.name);
  vmkit = outputs.packages.x86_64-linux.default;
  module = outputs.nixosModules.default { inherit lib pkgs; };
  image = outputs.lib.mkUbuntuImage {
    name = "ci";
    username = "agent";
    version = "24.04";
    codename = "noble";
    build = "20260615";
    sha256 = "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44";
  };
in
{
  inputs = builtins.attrNames flake.inputs;
  systems = builtins.attrNames outputs.packages;
  package = {
    inherit (vmkit)
      pname
      version
      cargoBuildFlags
      postInstall
      installCheckPhase
      doInstallCheck
      ;
    lockFile = toString vmkit.cargoLock.lockFile;
    nativeBuildInputs = names vmkit.nativeBuildInputs;
    buildInputs = names vmkit.buildInputs;
    runtimeTools = names vmkit.runtimeTools;
    mainProgram = vmkit.meta.mainProgram;
  };
  sameAsVmkit = outputs.packages.x86_64-linux.vmkit.name == vmkit.name;
  apps = lib.mapAttrs (_: a: a) outputs.apps.x86_64-linux;
  devShell = {
    packages = names outputs.devShells.x86_64-linux.default.packages;
    inputsFrom = names outputs.devShells.x86_64-linux.default.inputsFrom;
  };
  overlay = (outputs.overlays.default pkgs pkgs).vmkit.pname;
  module = {
    imports = map toString module.imports;
    package = module.virtualisation.desktopVMs.package.content.name;
    priority = module.virtualisation.desktopVMs.package.priority;
  };
  image = {
    inherit (image) pname requiredSystemFeatures;
    base = image.passthru.base.url;
    recipe = image.passthru.recipeFile.text;
  };
  imagesFor = builtins.attrNames (outputs.lib.imagesFor pkgs);
  checks = builtins.attrNames outputs.checks.x86_64-linux;
}
