# Image builds as derivations: a vmkit recipe written as a Nix attribute set becomes a derivation that runs
# `vmkit image build` inside the Nix sandbox; its output is the image directory (disk.qcow2, seed.iso, the key
# pair, run, manifest.json).
#
#   mkImage recipe                      any recipe whose source is a cloud image (cloudImage or ubuntu)
#   mkCloudImage { name, username, url, sha256, ... }
#   mkUbuntuImage { name, username, version, codename, build, sha256, arch ? "amd64", ... }
#   buildImage { recipe, bootTest ? false, bootTimeout ? 1200 }
#
# The base image is a fixed-output fetch (fetchurl with the recipe's SHA-256), handed to vmkit as a file:// URL
# with the same digest, so vmkit verifies it again. The build needs the `kvm` system feature: Nix schedules it
# only on builders that declare it (remote builders, Hydra), and vmkit's boot probe still falls back to TCG
# where KVM does not run guests. What needs the network at build time is refused by name (./recipe.nix): a
# Debian source (debootstrap), provision.packages, installNix; and sshKey, since a private key in the store is
# readable by every local user. The image's own generated key pair is in the output, so it is as readable as
# the rest of the store: the images are for tests and CI, not for secrets.
{
  stdenvNoCC,
  fetchurl,
  writeText,
  vmkit,
}:

let
  recipes = import ./recipe.nix;

  buildImage =
    {
      recipe,
      bootTest ? false,
      bootTimeout ? 1200,
    }:
    let
      checked = recipes.forSandbox recipe;
      base = fetchurl {
        name = "${recipe.name}-base.img";
        inherit (checked.image) url sha256;
      };
      sandboxRecipe = checked.recipe // {
        source.cloudImage = {
          url = "file://${base}";
          inherit (checked.image) sha256;
        };
      };
      recipeFile = writeText "${recipe.name}.toml" (recipes.toTOML sandboxRecipe);
    in
    stdenvNoCC.mkDerivation {
      pname = "vmkit-image-${recipe.name}";
      version = vmkit.version or "0";
      dontUnpack = true;
      nativeBuildInputs = [ vmkit ];
      requiredSystemFeatures = [ "kvm" ];
      buildPhase = ''
        runHook preBuild
        export HOME=$TMPDIR VMKIT_CACHE_DIR=$TMPDIR/vmkit-cache
        vmkit image build ${recipeFile} --out image --progress lines --boot-timeout ${toString bootTimeout}
        ${if bootTest then "vmkit image test image --no-cache --boot-timeout ${toString bootTimeout}" else ""}
        runHook postBuild
      '';
      installPhase = ''
        runHook preInstall
        mv image $out
        runHook postInstall
      '';
      passthru = {
        inherit recipe recipeFile base;
      };
      meta.description = "VM image ${recipe.name}, built by vmkit";
    };

  mkImage = recipe: buildImage { inherit recipe; };
in
{
  inherit buildImage mkImage;
  inherit (recipes) toTOML ubuntuUrl;

  mkCloudImage =
    {
      url,
      sha256,
      ...
    }@args:
    mkImage (
      builtins.removeAttrs args [
        "url"
        "sha256"
      ]
      // {
        source.cloudImage = { inherit url sha256; };
      }
    );

  mkUbuntuImage =
    {
      version,
      codename,
      sha256,
      build ? null,
      arch ? "amd64",
      ...
    }@args:
    mkImage (
      builtins.removeAttrs args [
        "version"
        "codename"
        "sha256"
        "build"
        "arch"
      ]
      // {
        source.ubuntu = {
          inherit
            version
            codename
            sha256
            build
            arch
            ;
        };
      }
    );
}
