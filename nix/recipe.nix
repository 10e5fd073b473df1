# Image recipes as Nix attribute sets. Needs no nixpkgs.
#
#   (import ./recipe.nix).toTOML recipe      the recipe as the TOML file `vmkit image build` reads
#   (import ./recipe.nix).ubuntuUrl source   the URL of an Ubuntu cloud image, as vmkit's fetcher derives it
#   (import ./recipe.nix).forSandbox recipe  { recipe; image; }: the checks for a build inside the Nix sandbox,
#                                            and the cloud image to fetch as a fixed-output derivation
#
# Keys are those of vmkit's TOML recipes (docs/images.md): name, hostname, username, sshPort, memory, cpus,
# diskSize, installNix, sshKey, source, provision. vmkit validates the values when it reads the file.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isInt
    isList
    isPath
    isString
    match
    toJSON
    ;

  recipeKeys = [
    "name"
    "hostname"
    "username"
    "sshPort"
    "memory"
    "cpus"
    "diskSize"
    "installNix"
    "sshKey"
    "source"
    "provision"
  ];

  # TOML values, written inline. A JSON string is a valid TOML basic string: the same escapes (\" \\ \n \t
  # \uXXXX), and builtins.toJSON escapes every control character.
  key = k: if match "[A-Za-z0-9_-]+" k != null then k else toJSON k;
  value =
    path: v:
    if isString v then
      toJSON v
    else if isPath v then
      toJSON "${v}"
    else if isBool v then
      (if v then "true" else "false")
    else if isInt v then
      toString v
    else if isList v then
      "[${concatStringsSep ", " (map (value "${path}[]") v)}]"
    else if isAttrs v then
      "{ ${
        concatStringsSep ", " (map (k: "${key k} = ${value "${path}.${k}" v.${k}}") (filter (k: v.${k} != null) (attrNames v)))
      } }"
    else
      throw "recipe ${path}: a ${builtins.typeOf v} has no TOML form";

  checkKeys =
    recipe:
    let
      unknown = filter (k: !(builtins.elem k recipeKeys)) (attrNames recipe);
    in
    if unknown != [ ] then
      throw "recipe: unknown key `${builtins.head unknown}` (recipe keys: ${concatStringsSep ", " recipeKeys})"
    else
      recipe;

  toTOML =
    recipe:
    concatStringsSep "" (
      map (k: "${key k} = ${value k recipe.${k}}\n") (filter (k: recipe.${k} != null) (attrNames (checkKeys recipe)))
    );

  ubuntuUrl =
    {
      version,
      codename,
      build ? null,
      arch ? "amd64",
      ...
    }:
    let
      dir = if build == null then "release" else "release-${builtins.replaceStrings [ "release-" ] [ "" ] build}";
    in
    "https://cloud-images.ubuntu.com/releases/${codename}/${dir}/ubuntu-${version}-server-cloudimg-${arch}.img";

  refuse = what: why: throw "lib.mkImage: ${what} cannot be built inside the Nix sandbox: ${why}";

  forSandbox =
    recipe0:
    let
      recipe = checkKeys recipe0;
      source = recipe.source or (throw "recipe: `source` is missing");
      kinds = attrNames source;
      kind = if builtins.length kinds == 1 then builtins.head kinds else throw "recipe: `source` needs exactly one of debian, cloudImage, ubuntu";
      provision = recipe.provision or { };
      image =
        if kind == "cloudImage" then
          {
            inherit (source.cloudImage) url sha256;
          }
        else if kind == "ubuntu" then
          {
            url = ubuntuUrl source.ubuntu;
            inherit (source.ubuntu) sha256;
          }
        else if kind == "debian" then
          refuse "source.debian" "debootstrap needs root and the Debian mirror on the network; build it with `vmkit image build` outside Nix, or start from a cloud image"
        else
          throw "recipe: unknown source `${kind}` (debian, cloudImage or ubuntu)";
    in
    if (provision.packages or [ ]) != [ ] then
      refuse "provision.packages" "cloud-init installs them from the distribution's archive and the sandbox has no network; bake them into the base image or install them in `provision.commands` from files in the store"
    else if recipe.installNix or false then
      refuse "installNix" "the guest installs Nix from its distribution's archive over the network"
    else if recipe ? sshKey && recipe.sshKey != null then
      refuse "sshKey" "a private key in the Nix store is readable by every user of the machine; let the build generate the image's key pair"
    else
      {
        inherit recipe image;
      };
in
{
  inherit toTOML ubuntuUrl forSandbox;
}
