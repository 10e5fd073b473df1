{
  description = "vmkit: run and build virtual machines on Linux/KVM (screen automation, unattended images, desktop VMs)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # vmkit drives x86-64 guests (qemu-system-x86_64, q35, OVMF for x86-64).
      systems = [ "x86_64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        vmkit = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.system}.vmkit;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.vmkit}/bin/vmkit";
        };
        yaml-automation-runner = {
          type = "app";
          program = "${self.packages.${pkgs.system}.vmkit}/bin/yaml-automation-runner";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.system}.vmkit ];
          packages =
            self.packages.${pkgs.system}.vmkit.runtimeTools
            ++ (with pkgs; [
              cargo
              rustc
              clippy
              rustfmt
              cargo-nextest
              nix
            ]);
          TESSDATA_PREFIX = "${pkgs.tesseract}/share/tessdata";
        };
      });

      overlays.default = final: _prev: {
        vmkit = final.callPackage ./nix/package.nix { };
      };

      # virtualisation.desktopVMs, with vmkit from this flake.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          virtualisation.desktopVMs.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.vmkit;
        };

      # Image builds as derivations. lib.mkImage recipe (and mkCloudImage, mkUbuntuImage, buildImage) build
      # for recipe.system (default x86_64-linux) with this flake's nixpkgs; lib.imagesFor pkgs gives the same
      # functions for a package set of your own.
      lib =
        let
          imagesFor =
            pkgs:
            pkgs.callPackage ./nix/images.nix {
              vmkit = pkgs.callPackage ./nix/package.nix { };
            };
          onSystem =
            fn: args:
            (imagesFor nixpkgs.legacyPackages.${args.system or "x86_64-linux"}).${fn} (
              builtins.removeAttrs args [ "system" ]
            );
        in
        {
          inherit imagesFor;
          mkImage = onSystem "mkImage";
          mkCloudImage = onSystem "mkCloudImage";
          mkUbuntuImage = onSystem "mkUbuntuImage";
          buildImage = onSystem "buildImage";
        };

      checks = forAllSystems (pkgs: {
        vmkit = self.packages.${pkgs.system}.vmkit;
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
